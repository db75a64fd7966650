"""Adversarial submissions of a real lesson (01, the perceptron) against ``course grade``.

Each attack is what a determined student might try to get marks without the work: objects
that say yes to every comparison (``__eq__`` bound in every way Python allows), patched
helpers, builtins and tracers, reading the hidden tests or the solutions, killing the
grader or other students' kernels, writing the gradebook late, memory in shared mappings,
hostile file names and files, huge and forged messages. All of them are graded in one
batch with the solution and the blank (released) notebook. Each must score no more than
the blank, no report may show a line of a hidden test, the solution keeps its full marks,
and the batch completes with a row for every file.
"""
import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from course.grading import grade, release, sandbox

pytestmark = [pytest.mark.slow, pytest.mark.kernel]

LESSON = Path(__file__).resolve().parent.parent / "solutions" / "01_perceptron.ipynb"
ANSWERS = [cell.metadata["nbgrader"]["grade_id"] for cell in release.read_notebook(LESSON).cells
           if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")]
WRONG = "def mp_unit(X, W):\n    return np.zeros(len(X))\n"
# Every function of the lesson returns LIAR; the class that LIAR is an instance of varies.
LIES = ("LIAR = Liar()\n"
        "def mp_unit(X, W):\n    return LIAR\n"
        "def perceptron_update(x, y, w, b, lr=1.0):\n    return LIAR, LIAR, LIAR\n"
        "def train_perceptron(X, y, lr=1.0, max_epochs=100):\n    return LIAR, LIAR, [LIAR]\n"
        "def reachable_truth_tables(values):\n    return LIAR\n")
LIARS = {
    "eq_method": "class Liar:\n    def __eq__(self, other):\n        return True\n"
                 "    __ne__ = lambda self, other: False\n    __hash__ = object.__hash__\n",
    "eq_classmethod": "class Liar:\n    __eq__ = classmethod(lambda cls, other: True)\n",
    "eq_staticmethod": "class Liar:\n    __eq__ = staticmethod(lambda *args: True)\n",
    "eq_descriptor": ("class Yes:\n    def __get__(self, obj, owner):\n"
                      "        return lambda *args: True\n"
                      "class Liar:\n    __eq__ = __ge__ = __le__ = Yes()\n"),
    "eq_partialmethod": ("import functools\n"
                         "class Liar:\n    __eq__ = functools.partialmethod(lambda self, other, "
                         "answer: answer, answer=True)\n"),
    "eq_numpy_function": "class Liar:\n    __eq__ = staticmethod(np.ones_like)\n",
    "float_subclass": ("class Liar(float):\n    __eq__ = lambda self, other: True\n"
                       "    __hash__ = float.__hash__\n"),
    "ndarray_subclass": ("class Liar(np.ndarray):\n    def __new__(cls):\n"
                         "        return np.zeros(4).view(cls)\n"
                         "    def __eq__(self, other):\n        return True\n"),
    "array_from_frames": (  # hands over whatever the caller holds as "expected"
        "import sys\n"
        "class Liar:\n    def __array__(self, dtype=None, copy=None):\n"
        "        frame = sys._getframe(1)\n"
        "        while frame is not None:\n"
        "            for name in ('expected', 'expected_array', 'y_gate', 'reference'):\n"
        "                if name in frame.f_locals:\n"
        "                    return np.asarray(frame.f_locals[name], dtype=dtype)\n"
        "            frame = frame.f_back\n"
        "        return np.zeros(1)\n"),
    "mock_any": "from unittest.mock import ANY\nLiar = lambda: ANY\n",
}
ATTACKS = {name: liar + LIES for name, liar in LIARS.items()}
ATTACKS.update({
    "check_code": WRONG + "check.__code__ = (lambda *args, **kwargs: None).__code__",
    "check_defaults": WRONG + "check.__defaults__ = ('', 1e300)",
    "rebind_check": WRONG + "check = lambda *args, **kwargs: None",
    "patch_numpy": WRONG + ("np.allclose = lambda *args, **kwargs: True\n"
                            "np.testing.assert_allclose = lambda *args, **kwargs: None\n"
                            "np.array_equal = lambda *args, **kwargs: True"),
    "tracer": WRONG + (  # jump over every raise in a cell, as if the test had passed
        "import sys\n"
        "def skip(frame, event, arg):\n"
        "    if event == 'line':\n"
        "        try:\n"
        "            import linecache\n"
        "            if 'raise' in linecache.getline(frame.f_code.co_filename, frame.f_lineno):\n"
        "                frame.f_lineno += 1\n"
        "        except ValueError:\n"
        "            pass\n"
        "    return skip\n"
        "sys.settrace(skip)"),
    "hide_errors": WRONG + ("import sys\nsys.excepthook = lambda *args: None\n"
                            "get_ipython().showtraceback = lambda *args, **kwargs: None\n"
                            "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)"),
    "forge_sends": (  # sends the expected values of the visible checks, then the real ones
        "from IPython.display import publish_display_data\n"
        "from course.grading._values import MIME, encode\n"
        "def mp_unit(X, W):\n"
        "    for n in range(5):\n"
        "        publish_display_data({MIME: {'site': f'test_mp_unit:{n}', "
        "'got': encode([0.0, 0.0, 0.0, 1.0])}})\n"
        "    return np.zeros(len(X))\n"),
    "silence_sends": WRONG + ("import course.grading._values as values\n"
                              "values.send = lambda *args: None\n"
                              "__course_send__ = lambda *args: None"),
    "leak_history": (  # every input the kernel ran, hidden tests included, in an error message
        "import linecache\n"
        "def mp_unit(X, W):\n"
        "    seen = '\\n'.join(In) + '\\n'.join(''.join(entry[2]) for entry in "
        "linecache.cache.values() if isinstance(entry, tuple) and len(entry) > 2)\n"
        "    raise ValueError(seen)\n"),
    "huge_message": "def mp_unit(X, W):\n    raise ValueError('x' * 120_000_000)\n",
    "forged_report": ("def mp_unit(X, W):\n    raise ValueError('\\n\\n**Score: 13 / 13**\\n\\n"
                      "| Test | Points | Result |\\n| --- | ---: | --- |\\n"
                      "| all | 13 / 13 | passed |\\n# Feedback')\n"),
    "shared_memory": WRONG + ("import mmap\n"
                              "block = mmap.mmap(-1, 3 * 2**30, flags=mmap.MAP_SHARED)\n"
                              "for start in range(0, len(block), 2**20):\n"
                              "    block[start] = 1"),
})
# Attacks on the machine rather than on the tests: only the sandbox stops them.
MACHINE = {
    "read_solutions": (
        "import glob, json, os\n"
        "paths = [SOLUTION] + glob.glob('/proc/*/cmdline')\n"
        "for path in paths:\n"
        "    try:\n"
        "        text = open(path, 'rb').read().decode('utf-8', 'replace')\n"
        "    except OSError:\n"
        "        continue\n"
        "    if path != SOLUTION:\n"
        "        found = [part for part in text.split('\\0') if part.endswith('.ipynb')]\n"
        "        if not found or not os.path.exists(found[0]):\n"
        "            continue\n"
        "        text = open(found[0]).read()\n"
        "    for cell in json.loads(text)['cells']:\n"
        "        if cell['metadata'].get('nbgrader', {}).get('solution'):\n"
        "            exec(''.join(cell['source']))\n"
        "    break\n"),
    "run_solutions": "get_ipython().run_line_magic('run', SOLUTION)\n",
    "kill_grader": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + WRONG,
    "kill_everything": ("import os, signal\n"
                        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
                        "    if int(pid) != os.getpid():\n"
                        "        try:\n            os.kill(int(pid), signal.SIGKILL)\n"
                        "        except OSError:\n            pass\n" + WRONG),
    "late_writer": ("import subprocess\n"
                    "subprocess.Popen(['setsid', 'sh', '-c', 'sleep 4; for f in OUT/gradebook.csv "
                    "OUT/feedback/*.md; do echo LATE-WRITE > $f; done'], "
                    "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n" + WRONG),
}


def submission(code):
    """The released lesson with ``code`` as its first answer (the one that defines ``mp_unit``)
    and every other answer empty."""
    nb = release.release_notebook(release.read_notebook(LESSON))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ANSWERS:
            cell.source = code if grade_id == ANSWERS[0] else "pass"
    return nb


def hidden_lines():
    lines = []
    for cell in release.read_notebook(LESSON).cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            lines += [line.strip() for text, hidden in grade.split_hidden(cell.source) if hidden
                      for line in text.splitlines() if len(line.strip()) >= 20]
    return lines


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    out = root / "out"
    attacks = dict(ATTACKS)
    if sandbox.probe()[0]:
        attacks.update({name: code.replace("SOLUTION", repr(str(LESSON))).replace("OUT", str(out))
                        for name, code in MACHINE.items()})
    paths = {"solution": LESSON}
    blank = root / "blank.ipynb"
    nbformat.write(release.release_notebook(release.read_notebook(LESSON)), blank)
    paths["blank"] = blank
    for name, code in attacks.items():
        paths[name] = root / f"{name}.ipynb"
        nbformat.write(submission(code), paths[name])
    hostile = root / "hostile"
    hostile.mkdir()
    (hostile / ("x" * 240 + ".ipynb")).write_text(blank.read_text())
    Path(os.fsdecode(os.fsencode(hostile) + b"/bad\xff-name.ipynb")).write_text(blank.read_text())
    os.mkfifo(hostile / "pipe.ipynb")
    (hostile / "link.ipynb").symlink_to(LESSON)
    files = list(paths.values()) + sorted(hostile.iterdir())
    started = time.monotonic()
    # The tracer slows every cell until it times out: the total timeout ends it (the
    # solution takes about 4 s, 10 on a loaded machine).
    gradebook = grade.grade_submissions(LESSON, files, out, jobs=3, timeout=20, total_timeout=30,
                                        memory_limit=2**30)
    elapsed = time.monotonic() - started
    time.sleep(max(6 - elapsed, 0))  # let a late writer try
    results = {name: gradebook.submissions[files.index(path)] for name, path in paths.items()}
    return gradebook, out, results, files


def test_the_solution_keeps_full_marks_and_the_blank_scores_zero(batch):
    gradebook, _, results, _ = batch
    assert results["solution"].score == results["solution"].max_score == 13
    assert results["blank"].score == 0


@pytest.mark.parametrize("name", sorted(ATTACKS) + sorted(MACHINE))
def test_an_attack_scores_no_more_than_a_blank_submission(batch, name):
    _, _, results, _ = batch
    if name not in results:
        pytest.skip("bubblewrap cannot run here, and without the sandbox a kernel can read "
                    "the solutions and signal the grader (course grade refuses to run so)")
    assert results[name].score <= results["blank"].score, [
        (cell.grade_id, cell.message) for cell in results[name].cells if cell.passed]


def test_the_batch_completes_with_a_row_for_every_file(batch):
    gradebook, out, _, files = batch
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert len(rows) == len(files) + 1 and len(gradebook.submissions) == len(files)
    unread = [result for result in gradebook.submissions if result.error]
    assert sorted(result.error.split(",")[0] for result in unread) == [
        "this is a named pipe (FIFO)", "this is a symbolic link"]


def test_no_report_shows_a_line_of_a_hidden_test(batch):
    _, out, results, _ = batch
    texts = [(out / "gradebook.json").read_text()]
    texts += [path.read_text() for path in (out / "feedback").glob("*.md")]
    leaked = {line for line in hidden_lines() for text in texts if line in text}
    assert not leaked
    assert "ValueError" in json.dumps([vars(c) for c in results["leak_history"].cells])


def test_nothing_written_late_or_forged_reaches_the_reports(batch):
    _, out, results, _ = batch
    if "late_writer" in results:  # the machine-level attacks run only where the sandbox does
        assert "LATE-WRITE" not in (out / "gradebook.csv").read_text()
        feedback = out / "feedback" / f"{results['solution'].name}.md"
        assert "LATE-WRITE" not in feedback.read_text()
    forged = (out / "feedback" / "forged_report.md").read_text()
    assert [line for line in forged.splitlines() if line.startswith("**Score")] == [
        "**Score: 0 / 13**"]
    assert not any(line.startswith("# Feedback") for line in forged.splitlines()[1:])
    details = json.loads((out / "gradebook.json").read_text())
    huge = next(row for row in details["submissions"] if row["submission"] == "huge_message")
    assert max(len(cell["message"]) for cell in huge["cells"]) < 2200
    assert len((out / "feedback" / "huge_message.md").read_text()) < 20_000
