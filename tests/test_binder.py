"""The Binder spec alone builds an environment that runs the course.

repo2docker installs ``binder/requirements.txt`` from the repository root into a fresh
environment. This test does the same in a new virtual environment and executes
``solutions/00_welcome.ipynb`` there, so a dependency missing from the spec fails here.
"""
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "00_welcome.ipynb"


def test_runtime_pins_a_supported_python():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-3.")
    assert int(runtime.split(".")[1]) >= 10


@pytest.mark.kernel
@pytest.mark.skipif(not NOTEBOOK.exists(), reason="solutions/00_welcome.ipynb not written yet")
def test_binder_spec_alone_runs_lesson_00(tmp_path):
    env_dir = tmp_path / "binder-env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items()
             if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MPLBACKEND")}
    clean["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-data")  # only the new env's kernel
    clean["JUPYTER_CONFIG_DIR"] = str(tmp_path / "jupyter-config")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    out = tmp_path / "executed.ipynb"
    run = subprocess.run(
        [str(python), "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=300", f"--output={out}", str(NOTEBOOK)],
        cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    prefix = subprocess.run([str(python), "-c", "import course, sys; print(sys.prefix)"],
                            env=clean, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(prefix) == env_dir  # the package came from the spec, into the new environment
    assert out.exists() and '"output_type": "error"' not in out.read_text()
