"""Tests for the grading sandbox, ``course.grading.sandbox`` (``course grade`` runs every
kernel in bubblewrap unless given ``--no-sandbox``).

One small source notebook asks for ``result()``; its test passes only when ``result()``
returns ``"contained"``. Each submission's answer tries one way out of the sandbox and sets
what ``result()`` returns from what it could do, so a submission's score says whether the
sandbox held (1) or not (0), and the failed test's message says what got out. The same
submissions graded with ``--no-sandbox`` show that each attempt does get out there.
"""
import json
import os
import secrets
import socket
import time
from pathlib import Path

import nbformat
import pytest

from course import cli
from course.grading import grade, markup, release, sandbox

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
MEMORY = 2**30  # bytes per grading kernel
TIMEOUT = 30
PROBE = sandbox.probe()
needs_bwrap = pytest.mark.skipif(not PROBE[0], reason=f"the sandbox cannot run: {PROBE[1]}")
SOLUTION = 'def result():\n    ### BEGIN SOLUTION\n    return "contained"\n    ### END SOLUTION'


def source_notebook():
    return markup.notebook([
        markup.markdown_cell("# Stay inside"),
        markup.code_cell("import os\n\n"
                         "def check(what, got, expected):\n"
                         "    if got != expected:\n"
                         "        raise AssertionError(f'{what}: {got!r}')"),
        markup.solution_cell(SOLUTION, "ex_result"),
        markup.test_cell("check('outcome', result(), 'contained')", "t_contained", 1),
    ])


def submission(answer):
    """The released notebook whose answer runs ``answer``, which sets ``OUTCOME``."""
    nb = release.release_notebook(source_notebook())
    cell = next(cell for cell in nb.cells
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex_result")
    cell.source = answer + "\ndef result():\n    return OUTCOME\n"
    return nb


def attempts(root, port, marker):
    """name -> answer: each sets OUTCOME to "contained" where the sandbox held."""
    secret = [str(root / "source.ipynb"), str(root / "read_source.ipynb"), str(root / "out"),
              str(SOLUTIONS / "00_welcome.ipynb"), str(SOLUTIONS), str(ROOT)]
    targets = [str(root / "escaped.txt"), str(ROOT / "escaped.txt"), "/escaped.txt",
               "/dev/escaped.txt", "/usr/escaped.txt",
               "/opt/course-lib/course/escaped.txt",
               os.path.join(os.path.dirname(os.__file__), "escaped.txt")]
    return {
        "read_source": (
            f"OUTCOME = 'contained'\nfor path in {secret!r}:\n"
            "    try:\n"
            "        os.listdir(path) if os.path.isdir(path) else open(path).read(100)\n"
            "    except OSError:\n        continue\n"
            "    OUTCOME = 'escaped: read ' + path\n    break"),
        "write_outside": (
            f"OUTCOME = 'contained'\nfor path in {targets!r}:\n"
            "    try:\n        with open(path, 'w') as f:\n            f.write('x')\n"
            "    except OSError:\n        continue\n"
            "    OUTCOME = 'escaped: wrote ' + path\n    break\n"
            "open('inside.txt', 'w').write('the work folder is writable')\n"
            "open('/tmp/inside.txt', 'w').write('so is /tmp')"),
        "processes": (
            "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
            "seen = []\nfor p in pids:\n    try:\n"
            "        seen.append(open(f'/proc/{p}/cmdline', 'rb').read())\n"
            "    except OSError:\n        pass\n"
            "OUTCOME = ('contained' if len(pids) <= 4 and not any(b'pytest' in c for c in seen)"
            " else f'escaped: saw {len(pids)} processes')"),
        "network": (
            "import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n"
            f"    OUTCOME = 'escaped: connected to 127.0.0.1:{port}'\n"
            "except OSError:\n    OUTCOME = 'contained'"),
        "uid": "OUTCOME = 'contained' if 0 not in (os.getuid(), os.geteuid(), os.getgid()) "
               "else f'escaped: uid {os.getuid()}'",
        "daemon": (
            "import subprocess, time\n"
            f"subprocess.Popen(['/bin/sh', '-c', '(sleep 30; touch late.txt) & : {marker}'],\n"
            "                 start_new_session=True, stdin=subprocess.DEVNULL,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "time.sleep(0.5)\n"
            f"alive = any(b'{marker}' in open(f'/proc/{{p}}/cmdline', 'rb').read()\n"
            "            for p in os.listdir('/proc') if p.isdigit())\n"
            "OUTCOME = 'contained' if alive else 'the daemon did not start'"),
        "shared_memory": (
            "import mmap\nfrom multiprocessing import shared_memory\n"
            f"size = {MEMORY * 3 // 2}\nOUTCOME = 'contained'\n"
            "try:\n    m = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)\n"
            "    for i in range(0, size, mmap.PAGESIZE):\n        m[i] = 1\n"
            "    OUTCOME = 'escaped: a shared mapping of 1.5 GiB'\n"
            "except (OSError, MemoryError):\n    pass\n"
            "if OUTCOME == 'contained':\n    try:\n"
            "        shm = shared_memory.SharedMemory(create=True, size=size)\n"
            "        OUTCOME = 'escaped: 1.5 GiB of shared memory'\n"
            "    except (OSError, MemoryError, ValueError):\n        pass"),
    }


def marked_processes(marker):
    """Processes on this machine whose command line holds ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def grade_class(root, names, sandboxed):
    """Grade the attempts ``names`` (all by default); return (gradebook, listener, marker)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    marker = f"course-sandbox-{secrets.token_hex(8)}"
    root.mkdir(exist_ok=True)
    nbformat.write(source_notebook(), root / "source.ipynb")
    paths = []
    for name, answer in attempts(root, listener.getsockname()[1], marker).items():
        if name in names:
            paths.append(root / f"{name}.ipynb")
            nbformat.write(submission(answer), paths[-1])
    gradebook = grade.grade_submissions(root / "source.ipynb", paths, root / "out", jobs=4,
                                        timeout=TIMEOUT, memory_limit=MEMORY, sandbox=sandboxed)
    return gradebook, listener, marker


def outcomes(gradebook):
    """name -> (score, what the test said)."""
    return {r.name: (r.score, r.cells[0].message) for r in gradebook.submissions}


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandboxed")
    gradebook, listener, marker = grade_class(root, set(attempts(root, 0, "")), True)
    try:
        yield gradebook, listener, marker, root
    finally:
        listener.close()


ALL = ["read_source", "write_outside", "processes", "network", "uid", "daemon",
       "shared_memory"]


@needs_bwrap
@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_the_sandbox_holds(sandboxed, name):
    gradebook, _, _, _ = sandboxed
    assert gradebook.sandbox is True and gradebook.unsandboxed == []
    assert outcomes(gradebook)[name] == (1, ""), outcomes(gradebook)[name]


@needs_bwrap
@pytest.mark.kernel
@pytest.mark.slow
def test_nothing_was_written_outside_and_nothing_connected(sandboxed):
    _, listener, _, root = sandboxed
    assert not (root / "escaped.txt").exists() and not (ROOT / "escaped.txt").exists()
    assert not Path("/escaped.txt").exists()
    with pytest.raises(BlockingIOError):
        listener.accept()


@needs_bwrap
@pytest.mark.kernel
@pytest.mark.slow
def test_no_process_outlives_grading(sandboxed):
    _, _, marker, root = sandboxed
    assert marked_processes(marker) == []  # the daemon ran (its test passed), and is gone
    time.sleep(1)
    assert marked_processes(marker) == []
    assert not list(root.rglob("late.txt"))


def test_the_sandbox_binds_only_the_course_package_of_the_checkout(tmp_path):
    argv = sandbox.command(["python", "-m", "course.grading._kernel", "0"], str(tmp_path),
                           str(tmp_path / "work"))
    options = argv[:argv.index("--")]
    sources = {options[i + 1] for i, option in enumerate(options)
               if option in ("--bind", "--ro-bind")}
    assert str(ROOT / "course") in sources
    assert not any(str(ROOT) == s or str(SOLUTIONS).startswith(s + os.sep) for s in sources)
    assert options[options.index(str(ROOT / "course")) + 1] == "/opt/course-lib/course"
    writable = [options[i + 1] for i, option in enumerate(options) if option == "--bind"]
    assert writable == [str(tmp_path)]
    for option in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net",
                   "--die-with-parent", "--new-session"):
        assert option in options
    assert options[options.index("--uid") + 1] == "65534"


def test_folders_in_tmp_are_bound_after_the_sandboxs_own_tmp(tmp_path, monkeypatch):
    """A Python environment in /tmp (CI makes its venv with mktemp) must stay visible: the
    sandbox's in-memory /tmp is mounted before the binds, never over them."""
    monkeypatch.setattr(sandbox, "_python_folders", lambda: ["/tmp/ci-venv", "/usr"])
    argv = sandbox.command(["python"], str(tmp_path), str(tmp_path / "work"))
    options = argv[:argv.index("--")]
    tmpfs = options.index("/tmp", options.index("--tmpfs"))
    assert options.index("/tmp/ci-venv") > tmpfs and options.index(str(tmp_path)) > tmpfs


@pytest.mark.kernel
@pytest.mark.slow
def test_no_sandbox_grades_and_records_what_it_gives_up(tmp_path):
    names = {"read_source", "write_outside", "processes", "network"}
    gradebook, listener, _ = grade_class(tmp_path, names, False)
    listener.close()
    assert gradebook.sandbox is False
    assert gradebook.unsandboxed == list(sandbox.LOST)
    got = outcomes(gradebook)
    assert all(got[name][0] == 0 and "escaped" in got[name][1] for name in names), got
    assert (tmp_path / "escaped.txt").exists()
    data = json.loads((tmp_path / "out" / "gradebook.json").read_text())
    assert data["sandbox"] is False and data["unsandboxed"] == list(sandbox.LOST)


def test_grading_refuses_without_the_sandbox(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "probe", lambda: (False, "bwrap (bubblewrap) is not installed"))
    source = tmp_path / "source.ipynb"
    nbformat.write(source_notebook(), source)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        grade.grade_submissions(source, [source], tmp_path / "out")
    status = cli.main(["grade", str(source), str(source), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 1
    assert "bubblewrap is not installed" in err.replace("(bubblewrap) ", "bubblewrap ")
    assert "apt-get install bubblewrap" in err and "--no-sandbox" in err
    assert not (tmp_path / "out" / "gradebook.csv").exists()


def test_cli_no_sandbox_is_passed_on_and_announced(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(source, submissions, out, **options):
        seen.update(options)
        return grade.Gradebook(str(source), [], [], sandbox=options["sandbox"])

    monkeypatch.setattr(grade, "grade_submissions", fake)
    args = ["grade", "s.ipynb", "a.ipynb", "--out", str(tmp_path)]
    assert cli.main(args) == 0 and seen["sandbox"] is True
    assert "without the sandbox" not in capsys.readouterr().err
    assert cli.main(args + ["--no-sandbox"]) == 0 and seen["sandbox"] is False
    err = capsys.readouterr().err
    assert "without the sandbox" in err and "grader's user rights" in err


def test_info_reports_the_sandbox(capsys, monkeypatch):
    cli.main(["info"])
    line = next(x for x in capsys.readouterr().out.splitlines() if "grading sandbox" in x)
    assert line.startswith("[OK] grading sandbox: bubblewrap" if PROBE[0] else "[FAIL]")
    monkeypatch.setattr(sandbox, "probe", lambda: (False, "bwrap (bubblewrap) is not installed"))
    cli.main(["info"])
    out = capsys.readouterr().out
    assert "[FAIL] grading sandbox: bwrap (bubblewrap) is not installed" in out
    assert "fix: install bubblewrap" in out
