import numpy as np
import pytest

from course import backend


@pytest.fixture(autouse=True)
def _cpu_backend():
    """Every test starts on the CPU backend, whatever an earlier test chose."""
    backend.use("cpu")
    yield
    backend.use("cpu")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
