"""The ``course`` command.

    course info                  check this environment: [OK]/[FAIL] lines, each failure with a fix
    course data mnist [--dir D]  download and verify MNIST ahead of class
"""
import argparse
import importlib
import sys

REQUIRED_PYTHON = (3, 10)


def _line(ok, what, fix=None):
    text = f"[{'OK' if ok else 'FAIL'}] {what}"
    if not ok and fix:
        text += f"\n       fix: {fix}"
    print(text)
    return ok


def _package(name, fix):
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
        return _line(False, f"{name}: cannot import ({exc})", fix)
    return _line(True, f"{name} {getattr(module, '__version__', '')}".rstrip())


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
    for name in ("tqdm", "matplotlib", "ipywidgets"):
        ok &= _package(name, f'pip install -e . (reinstalls {name} from the course requirements)')
    if report["gpu"]:
        _line(True, f"GPU {report['gpu']} with CuPy {report['cupy']} (backend.use('gpu') to use it)")
    else:
        _line(False, "GPU: none found (optional: everything but the GPU part of lesson 07 "
                     "runs on the CPU)", report["gpu_error"])
    try:
        from course import data

        present, where = data.mnist_status()
        _line(present, f"MNIST: {where}",
              "run `course data mnist` while online, or set COURSE_DATA_DIR to a folder "
              "holding the four MNIST files")
    except ImportError:
        pass
    return 0 if ok else 1


def data_command(args):
    """Fetch and verify a data set; return the exit status."""
    from course import data

    try:
        folder = data.fetch_mnist(args.dir)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"[OK] MNIST verified in {folder}")
    return 0


def main(argv=None):
    """Entry point of the ``course`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="course", description="Neural Networks from Scratch")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="check the environment ([OK]/[FAIL] lines)")
    data_parser = commands.add_parser("data", help="download and verify a data set")
    data_parser.add_argument("name", choices=["mnist"])
    data_parser.add_argument("--dir", default=None, help="folder to keep the files in")
    args = parser.parse_args(argv)
    if args.command == "info":
        return info()
    return data_command(args)


if __name__ == "__main__":
    sys.exit(main())
