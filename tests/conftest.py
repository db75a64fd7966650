"""Fixtures shared by the unit tests.

- ``rng``: a seeded NumPy generator.
- ``xps``: the ``array_api_strict`` module (skips without it), for running the
  library on a namespace that allows nothing beyond the array API standard.
- ``torch``: PyTorch (skips without it), the optional second reference.
- ``mnist_source``: the folder holding the real MNIST files, $COURSE_DATA_DIR
  (skips when it is not set).
- ``cupy`` / ``no_gpu``: the cupy module on a machine with a usable GPU, or
  nothing on a machine without one (each skips on the other kind of machine).

Markers (registered in pyproject.toml): ``slow`` (left out of the quick loop,
``python -m pytest -m "not slow"``), ``kernel`` (starts Jupyter kernels or
servers), ``notebooks`` (the nbval runs of solutions/, marked in ../conftest.py).
Every ``kernel`` test is also ``slow``, and every test that uses test_grade.py's
``graded`` fixture (a class of submissions graded in kernels) is ``kernel``.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from course import backend

KERNEL_FIXTURES = {"graded"}  # fixtures that start Jupyter kernels


def pytest_collection_modifyitems(items):
    """Mark tests using a fixture of KERNEL_FIXTURES ``kernel``, and ``kernel`` tests ``slow``."""
    for item in items:
        if KERNEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kernel)
        if item.get_closest_marker("kernel") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _cpu_backend():
    """Every test starts on the CPU backend, whatever an earlier test chose."""
    backend.use("cpu")
    yield
    backend.use("cpu")


@pytest.fixture
def rng():
    """A NumPy generator seeded with 0: the same draws in every run."""
    return np.random.default_rng(0)


@pytest.fixture
def xps():
    """The ``array_api_strict`` module; the test is skipped where it is not installed."""
    return pytest.importorskip("array_api_strict", reason="installed with the test extras")


@pytest.fixture
def torch():
    """The ``torch`` module; the test is skipped where PyTorch is not installed."""
    return pytest.importorskip("torch", reason="PyTorch is an optional second reference")


@pytest.fixture
def mnist_source():
    """The folder holding the four real MNIST files: $COURSE_DATA_DIR, or skip."""
    folder = os.environ.get("COURSE_DATA_DIR")
    if not folder:
        pytest.skip("set COURSE_DATA_DIR to a folder holding the four MNIST files")
    return Path(folder)


def _gpu():
    """The cupy module when CuPy is installed and sees a GPU, else None."""
    try:
        return backend._cupy()
    except RuntimeError:
        return None


@pytest.fixture
def cupy():
    """The cupy module; the test is skipped on a machine without a usable GPU."""
    module = _gpu()
    if module is None:
        pytest.skip("no usable GPU: CuPy is not installed or sees no device")
    return module


@pytest.fixture
def no_gpu():
    """Nothing; the test is skipped on a machine with a GPU (it shows the no-GPU path)."""
    if _gpu() is not None:
        pytest.skip("this machine has a GPU")


@pytest.fixture(autouse=True)
def _grade_unsandboxed_where_bubblewrap_cannot_run(request, monkeypatch):
    """Where bubblewrap cannot run (macOS, a container without user namespaces), the grader's
    tests grade without the sandbox, so its code is still exercised; tests/test_sandbox.py
    skips there, saying why. CI installs bubblewrap (.ci/run) and runs the sandboxed path."""
    if request.module.__name__.endswith("test_sandbox") or "grad" not in request.module.__name__:
        return
    from course.grading import grade, sandbox

    if sandbox.probe()[0]:
        return
    original = grade.grade_submissions

    def unsandboxed(*args, **kwargs):
        kwargs["sandbox"] = False
        return original(*args, **kwargs)

    monkeypatch.setattr(grade, "grade_submissions", unsandboxed)

