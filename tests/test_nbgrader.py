"""Real nbgrader accepts the solution notebooks and grades them as ``course grade`` does.

For each lesson below, an nbgrader course folder is built in a temporary folder with the
solution notebook as the assignment's source, and three submissions:

- ``solution``: the solution notebook itself;
- ``blank``: the student version that ``course release`` writes (``lessons/``), unchanged;
- ``partial``: that student version with one exercise's answer cell filled in from the
  solution.

``nbgrader generate_assignment`` and ``nbgrader autograde`` grade them (nbgrader's scores
are read from its ``gradebook.db``), ``course grade`` grades the same files, and every
auto-graded cell's score and every total must agree. Skipped where nbgrader is not
installed (``pip install -e ".[nbgrader]"``).
"""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="nbgrader is not installed: pip install -e '.[nbgrader]'")

from nbgrader.api import Gradebook  # noqa: E402

from course.grading import grade  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "lesson"
STUDENTS = ("solution", "blank", "partial")

# lesson -> the exercise whose answer the partial submission has
LESSONS = {
    "00_welcome": "ex_weighted_sum",
    "01_perceptron": "ex_unit_and_gates",
    "03_computational_graphs": "ex_graph_backward",
    "06_mnist": "ex_one_hot",
}
NEEDS_MNIST = {"06_mnist"}
CELL_TIMEOUT = 600  # seconds; lesson 06 trains networks
RUN_TIMEOUT = 1500  # seconds for one nbgrader command

CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
c.ExecutePreprocessor.timeout = {timeout}
"""


def _cells_by_id(nb):
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in nb.cells
            if "grade_id" in cell.metadata.get("nbgrader", {})}


def _partial(lesson, solution, grade_id):
    """The student version with the answer cell ``grade_id`` copied from the solution."""
    nb = nbformat.read(lesson, as_version=4)
    answer = _cells_by_id(nbformat.read(solution, as_version=4))[grade_id]
    cell = _cells_by_id(nb)[grade_id]
    assert cell.metadata["nbgrader"].get("solution"), f"{grade_id} is not an answer cell"
    assert cell.source != answer.source, f"{grade_id}: the release left the solution in"
    cell.source = answer.source
    return nb


def _nbgrader(args, cwd, env):
    """Run the nbgrader command line; fail the test with its output if it fails."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, (f"nbgrader {' '.join(args)} exited {proc.returncode}\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def _table(lesson, ids, course, nbg):
    """Both graders' scores, one row per cell and one for the total, for failure messages."""
    lines = [f"{lesson}: cell | " + " | ".join(f"{s} course/nbgrader" for s in STUDENTS)]
    for gid in [*ids, "score", "max_score"]:
        lines.append(f"  {gid} | " + " | ".join(
            f"{course[s].get(gid)}/{nbg[s].get(gid)}" for s in STUDENTS))
    return "\n".join(lines)


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_nbgrader_scores_agree_with_course_grade(lesson, tmp_path, request, monkeypatch):
    if lesson in NEEDS_MNIST:  # both graders pass COURSE_DATA_DIR on to the notebook
        monkeypatch.setenv("COURSE_DATA_DIR", str(request.getfixturevalue("mnist_source")))
    env = dict(os.environ)
    # the kernel nbgrader starts must be this environment's Python, with `course` importable
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    solution = ROOT / "solutions" / f"{lesson}.ipynb"
    released = ROOT / "lessons" / f"{lesson}.ipynb"

    course_dir = tmp_path / "course"
    source_dir = course_dir / "source" / ASSIGNMENT
    source_dir.mkdir(parents=True)
    (source_dir / solution.name).write_bytes(solution.read_bytes())
    db_path = course_dir / "gradebook.db"
    (course_dir / "nbgrader_config.py").write_text(CONFIG.format(
        root=str(course_dir), db_url=f"sqlite:///{db_path}", timeout=CELL_TIMEOUT))
    submissions = {}
    for student in STUDENTS:
        path = course_dir / "submitted" / student / ASSIGNMENT / solution.name
        path.parent.mkdir(parents=True)
        if student == "solution":
            path.write_bytes(solution.read_bytes())
        elif student == "blank":
            path.write_bytes(released.read_bytes())
        else:
            nbformat.write(_partial(released, solution, LESSONS[lesson]), path)
        submissions[student] = path

    for student in STUDENTS:
        _nbgrader(["db", "student", "add", student], course_dir, env)
    _nbgrader(["db", "assignment", "add", ASSIGNMENT], course_dir, env)
    _nbgrader(["generate_assignment", ASSIGNMENT, "--force"], course_dir, env)
    # nbgrader grades in a subprocess while course grade runs here; its log goes to a file,
    # which cannot fill up and block it as a pipe could
    log = tmp_path / "autograde.log"
    with log.open("w") as out:
        autograde = subprocess.Popen(
            [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"],
            cwd=course_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            book = grade.grade_submissions(solution, [submissions[s] for s in STUDENTS],
                                           tmp_path / "course_grade", jobs=len(STUDENTS))
            autograde.wait(timeout=RUN_TIMEOUT)
        finally:
            if autograde.poll() is None:
                autograde.kill()
                autograde.wait()
    assert autograde.returncode == 0, (f"nbgrader autograde exited {autograde.returncode}\n"
                                       f"{log.read_text()[-8000:]}")

    auto_ids = [cell.grade_id for cell in book.cells if not cell.manual]
    course = {}
    for student, result in zip(STUDENTS, book.submissions):
        assert not result.error, f"course grade: {student}: {result.error}"
        row = {cell.grade_id: cell.points for cell in result.cells if cell.grade_id in auto_ids}
        course[student] = {**row, "score": result.score, "max_score": result.max_score}

    nbg = {}
    with Gradebook(f"sqlite:///{db_path}") as gradebook:
        for student in STUDENTS:
            nb = gradebook.find_submission_notebook(solution.stem, ASSIGNMENT, student)
            row = {g.name: g.auto_score for g in nb.grades if g.name in auto_ids}
            # nbgrader's total counts manual scores too; the auto-graded cells' sum compares
            nbg[student] = {**row, "score": sum(row.values()),
                            "max_score": sum(g.max_score for g in nb.grades if g.name in auto_ids)}
            # the same graded cells, with the same points
            graded = {g.name: g.max_score for g in nb.grades}
            expected = {c.grade_id: float(c.points) for c in book.cells}
            assert graded == expected, f"{lesson}: nbgrader {graded}, course grade {expected}"
            if not any(c.manual for c in book.cells):
                assert nb.score == nbg[student]["score"], (student, nb.score)
                assert nb.max_score == nbg[student]["max_score"], (student, nb.max_score)

    table = _table(lesson, auto_ids, course, nbg)
    print(table)
    # the three submissions must tell the graders something: full, nothing, something between
    assert course["solution"]["score"] == course["solution"]["max_score"] > 0, table
    assert course["blank"]["score"] == 0, table
    assert 0 < course["partial"]["score"] < course["partial"]["max_score"], table
    for student in STUDENTS:
        for gid in [*auto_ids, "score", "max_score"]:
            assert course[student][gid] == pytest.approx(nbg[student][gid]), (
                f"{lesson}, {student}, {gid}: course grade {course[student][gid]}, "
                f"nbgrader {nbg[student][gid]}\n{table}")
