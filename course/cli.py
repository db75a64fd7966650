"""The ``course`` command.

    course info                  check this environment: [OK]/[FAIL] lines, each failure with a fix
    course data mnist [--dir D]  download and verify MNIST ahead of class
    course release SOURCE_DIR OUTPUT_DIR [--check] [--student-repo DIR [--github OWNER/NAME]]
                                 write the student notebooks (or check they are up to date),
                                 and a publishable student repository
    course grade SOURCE_NOTEBOOK SUBMISSION... --out DIR [--jobs N] [--timeout SECONDS]
                 [--total-timeout SECONDS] [--memory GIB] [--no-sandbox] [--manual CSV]
                                 grade submissions into DIR/gradebook.csv, each kernel in
                                 a bubblewrap sandbox (--no-sandbox: without one)

The benchmarks against peers are not part of the package: they live in benchmarks/ of the
repository and run with ``python benchmarks/run.py`` (``course bench`` says so).
"""
import argparse
import importlib
import os
import shutil
import subprocess
import sys

REQUIRED_PYTHON = (3, 10)


def _line(ok, what, fix=None):
    """Print an ``[OK]``/``[FAIL]`` line (and the fix after a failure); return ``ok``."""
    text = f"[{'OK' if ok else 'FAIL'}] {what}"
    if not ok and fix:
        text += f"\n       fix: {fix}"
    print(text)
    return ok


def _package(name, fix):
    """Check that ``name`` imports, printing its version; return whether it did."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
        return _line(False, f"{name}: cannot import ({exc})", fix)
    return _line(True, f"{name} {getattr(module, '__version__', '')}".rstrip())


def _widgets():
    """ipywidgets and its JupyterLab extension must be of matching major versions."""
    fix = ('pip install -e . --upgrade (installs ipywidgets 8 with jupyterlab_widgets 3), '
           'then restart JupyterLab')
    try:
        import ipywidgets
        import jupyterlab_widgets
    except ImportError as exc:
        return _line(False, f"widgets: cannot import ({exc})", fix)
    widgets, lab = ipywidgets.__version__, jupyterlab_widgets.__version__
    matching = {"8": "3", "7": "1"}.get(widgets.split(".")[0]) == lab.split(".")[0]
    return _line(matching, f"ipywidgets {widgets} with jupyterlab_widgets {lab}"
                 + ("" if matching else ": these versions do not work together "
                    "(widgets show 'Error displaying widget')"), fix)


def _kernel():
    """A Python 3 Jupyter kernel must be installed for the notebooks to run."""
    fix = "pip install ipykernel && python -m ipykernel install --user"
    try:
        import ipykernel
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return _line(False, f"Jupyter kernel: {exc}", fix)
    if "python3" not in specs:
        return _line(False, "Jupyter kernel: no 'python3' kernel is installed", fix)
    return _line(True, f"Jupyter kernel python3 (ipykernel {ipykernel.__version__})")


def _sandbox():
    """The grading sandbox (bubblewrap) must run here for ``course grade``."""
    from course.grading import sandbox

    ok, detail = sandbox.probe()
    if ok:
        return _line(True, f"grading sandbox: {detail} ({sandbox.bwrap()}, user, PID, IPC "
                           f"and network namespaces)")
    return _line(False, f"grading sandbox: {detail}",
                 f"{sandbox.INSTALL} and allow unprivileged user namespaces, "
                 f"{sandbox.NO_SANDBOX}")


def _mpi():
    """MPI for data-parallel training (``course.parallel``): mpi4py, and two ranks that talk."""
    fix = 'pip install -e ".[mpi]" (the mpi4py and mpich wheels: no compiler or system MPI needed)'
    try:
        import mpi4py
    except ImportError:
        return _line(False, "MPI: mpi4py is not installed (optional: only data-parallel training "
                            "needs it)", fix)
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    mpiexec = shutil.which("mpiexec", path=path)
    if mpiexec is None:
        return _line(False, f"MPI: mpi4py {mpi4py.__version__}, but no mpiexec", fix)
    # Each rank adds 1 and rank 0 alone prints the sum: 2 when the ranks found each other, and
    # one line only, since mpiexec may interleave the output of ranks that print together.
    code = ("from mpi4py import MPI; total = MPI.COMM_WORLD.allreduce(1); "
            "MPI.COMM_WORLD.rank or print(total)")
    try:
        done = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return _line(False, f"MPI: {mpiexec} could not run ({exc})", fix)
    if done.stdout.split() != ["2"]:
        why = (done.stderr.strip().splitlines()
               or [f"exit status {done.returncode}, printed {done.stdout.strip()!r} instead of '2'"])[-1]
        return _line(False, f"MPI: two ranks could not talk ({why})", fix)
    return _line(True, f"MPI: mpi4py {mpi4py.__version__}, two ranks ran with {mpiexec}")


def info():
    """Print the environment checks; return 0 if every required check passed, else 1."""
    from course import backend

    ok = _line(
        sys.version_info[:2] >= REQUIRED_PYTHON,
        f"Python {sys.version.split()[0]}",
        "install Python 3.10 or newer",
    )
    report = backend.info()
    threads = report["blas_threads"]
    ok &= _line(True, f"NumPy {report['numpy']}, BLAS {report['blas']}"
                + (f", {threads} threads" if threads else ""))
    for name in ("tqdm", "matplotlib", "jupyterlab"):
        ok &= _package(name, f'pip install -e . (reinstalls {name} from the course requirements)')
    ok &= _widgets()
    ok &= _kernel()
    _sandbox()  # needed only to grade, so not required
    _mpi()  # needed only for data-parallel training, so not required
    if report["gpu"]:
        _line(True, f"GPU {report['gpu']} with CuPy {report['cupy']} (backend.use('gpu') to use it)")
    else:
        _line(False, "GPU: none found (optional: everything but the GPU part of lesson 07 "
                     "runs on the CPU)", report["gpu_error"])
    try:
        from course import mnist

        present, where = mnist.mnist_status()
        _line(present, where,
              "run `course data mnist` while online, or set COURSE_DATA_DIR to a folder "
              "holding the four MNIST files")
    except ImportError:
        pass
    return 0 if ok else 1


def data_command(args):
    """Fetch and verify a data set; return the exit status."""
    from course import mnist

    try:
        folder = mnist.fetch_mnist(args.dir)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"[OK] MNIST verified in {folder}")
    return 0


def release_command(args):
    """Write (or with ``--check`` only compare) the student notebooks; return the exit status."""
    from course.grading import release

    return release.main(args.source_dir, args.output_dir, check=args.check,
                        student_repo=args.student_repo, slug=args.github)


def _gigabytes(text):
    """``--memory 2.5`` -> bytes; 0 means no cap."""
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of GiB (e.g. 4 or 0.5), got {text!r}")
    return int(value * 2**30)


def grade_command(args):
    """Grade the submissions against the source notebook; return the exit status."""
    from course.grading import grade

    return grade.main(args.source, args.submissions, args.out, jobs=args.jobs, timeout=args.timeout,
                      total_timeout=args.total_timeout, memory_limit=args.memory,
                      sandbox=not args.no_sandbox, manual=args.manual)


BENCH_MOVED = ("the benchmarks live in benchmarks/ of the repository: "
               "run python benchmarks/run.py [--quick] from a checkout")


def bench_command(args):
    """``course bench`` is no longer a command: say where the benchmarks are; return 2."""
    print(f"course bench: {BENCH_MOVED}", file=sys.stderr)
    return 2


def main(argv=None):
    """Entry point of the ``course`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="course", description="Neural Networks from Scratch")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="check the environment ([OK]/[FAIL] lines)")
    data_parser = commands.add_parser("data", help="download and verify a data set")
    data_parser.add_argument("name", choices=["mnist"])
    data_parser.add_argument("--dir", default=None, help="folder to keep the files in")
    release_parser = commands.add_parser("release", help="write student notebooks from solutions")
    release_parser.add_argument("source_dir")
    release_parser.add_argument("output_dir")
    release_parser.add_argument("--student-repo", default=None, metavar="DIR",
                                help="also write a repository to publish for students (lessons, "
                                     "library, binder, licence; no solutions) into the empty DIR")
    release_parser.add_argument("--github", default="OWNER/REPOSITORY", metavar="OWNER/NAME",
                                help="the GitHub repository the student repository will live in "
                                     "(for its Binder badge)")
    release_parser.add_argument("--check", action="store_true",
                                help="write nothing; exit 1 naming the notebooks that are out of date")
    grade_parser = commands.add_parser("grade", help="grade submissions against a source notebook")
    grade_parser.add_argument("source", help="the solution notebook (source of tests and points)")
    grade_parser.add_argument("submissions", nargs="+", help="submitted notebooks")
    grade_parser.add_argument("--out", required=True, help="folder for gradebook.csv and feedback")
    grade_parser.add_argument("--jobs", type=int, default=None,
                              help="submissions graded at once (default: the number of CPUs)")
    grade_parser.add_argument("--timeout", type=float, default=None,
                              help="seconds allowed per cell (default 300)")
    grade_parser.add_argument("--total-timeout", type=float, default=None,
                              help="seconds allowed per submission (default 1800)")
    grade_parser.add_argument("--memory", type=_gigabytes, default=None,
                              help="memory cap per grading kernel in GiB, 0 for none (default 4)")
    grade_parser.add_argument("--no-sandbox", action="store_true",
                              help="run the students' code without the bubblewrap sandbox "
                                   "(with your user rights; recorded in gradebook.json)")
    grade_parser.add_argument("--manual", default=None, metavar="MANUAL_CSV",
                              help="points given by hand: the manual.csv of an earlier run, with "
                                   "its points column filled in")
    commands.add_parser("bench", help="moved: python benchmarks/run.py", add_help=False)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "bench":  # `course bench --quick` gets the message, not an error
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handlers = {"info": lambda a: info(), "data": data_command, "release": release_command,
                "grade": grade_command, "bench": bench_command}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
