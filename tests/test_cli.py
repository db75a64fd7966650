"""Tests for course.cli, the ``course`` command."""
import os
import shutil
import subprocess
import sys

import pytest

from course import cli


def test_info_prints_ok_or_fail_lines_with_fixes(capsys):
    status = cli.main(["info"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].startswith("[OK] Python 3.")
    assert any(line.startswith("[OK] NumPy") and "BLAS" in line for line in lines)
    for i, line in enumerate(lines):
        assert line.startswith(("[OK] ", "[FAIL] ", "       fix: ")), line
        if line.startswith("[FAIL]"):
            assert lines[i + 1].startswith("       fix: "), f"no fix after {line!r}"
    assert any("GPU" in line for line in lines)
    assert any("MNIST" in line for line in lines)


def test_console_script_is_installed():
    """The ``course`` command that the install puts next to this Python runs ``course info``."""
    script = shutil.which("course", path=os.path.dirname(sys.executable)) or shutil.which("course")
    assert script, "no `course` command: the package's console script is not installed"
    out = subprocess.run([script, "info"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "[OK] Python" in out.stdout


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["nope"])
    assert exc.value.code == 2
    assert "usage: course" in capsys.readouterr().err


def test_data_mnist_verifies_an_existing_folder(mnist_source, capsys):
    assert cli.main(["data", "mnist", "--dir", str(mnist_source)]) == 0
    assert "[OK] MNIST verified" in capsys.readouterr().out


def test_data_mnist_offline_fails_with_advice(tmp_path, capsys, monkeypatch):
    from course import mnist

    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/"])
    status = cli.main(["data", "mnist", "--dir", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert status == 1 and "COURSE_DATA_DIR" in err and "http://127.0.0.1:9/" in err


@pytest.mark.parametrize("argv", [["bench"], ["bench", "--quick"]])
def test_bench_says_where_the_benchmarks_are(argv, capsys):
    assert cli.main(argv) == 2
    assert "the benchmarks live in benchmarks/" in capsys.readouterr().err


def test_unknown_options_are_still_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["info", "--quick"])
    assert exc.value.code == 2 and "unrecognized arguments: --quick" in capsys.readouterr().err


def test_info_flags_mismatched_widget_versions(capsys, monkeypatch):
    import jupyterlab_widgets

    monkeypatch.setattr(jupyterlab_widgets, "__version__", "1.1.7")
    assert cli.main(["info"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] ipywidgets 8" in out and "do not work together" in out
    assert "fix: pip install -e . --upgrade" in out


def test_info_flags_a_missing_kernel(capsys, monkeypatch):
    from jupyter_client import kernelspec

    monkeypatch.setattr(kernelspec.KernelSpecManager, "find_kernel_specs", lambda self: {})
    assert cli.main(["info"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] Jupyter kernel: no 'python3' kernel" in out and "ipykernel install" in out


def test_info_finds_two_mpi_ranks_every_time(capsys):
    """Both ranks used to print at once, and mpiexec could interleave their lines into "22":
    about one run in three was reported as MPI failing on a machine where it works."""
    pytest.importorskip("mpi4py", reason="the MPI check needs mpi4py (pip install -e '.[mpi]')")
    if shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                     os.environ.get("PATH", "")])) is None:
        pytest.skip("no mpiexec next to this Python or on PATH (pip install -e '.[mpi]')")
    for _ in range(10):
        assert cli._mpi(), capsys.readouterr().out
    assert capsys.readouterr().out.count("[OK] MPI: mpi4py") == 10


def test_info_says_what_the_mpi_ranks_printed(capsys, monkeypatch):
    pytest.importorskip("mpi4py", reason="the MPI check needs mpi4py (pip install -e '.[mpi]')")
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: "/usr/bin/mpiexec")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(
        args, 0, stdout="1\n", stderr=""))
    assert not cli._mpi()
    out = capsys.readouterr().out
    assert "[FAIL] MPI: two ranks could not talk (exit status 0, printed '1' instead of '2')" in out
    assert "fix: pip install" in out
