"""``course grade`` on every real lesson: the solution earns full marks, the student notebook
that ``course release`` writes earns nothing, and each written answer waits for manual
grading. This is what proves that every check cell can be judged outside the kernel: the
solution runs in the student's place, with the expected values left out, and the grader
compares what it sends with the reference run."""
from pathlib import Path

import pytest

from course.grading import grade

pytestmark = [pytest.mark.slow, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted(path.stem for path in (ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_solution_earns_full_marks_and_the_student_notebook_none(lesson, tmp_path):
    source = ROOT / "solutions" / f"{lesson}.ipynb"
    gradebook = grade.grade_submissions(source, [source, ROOT / "lessons" / f"{lesson}.ipynb"],
                                        tmp_path, jobs=3, timeout=600)
    solution, student = gradebook.submissions
    failed = [(cell.grade_id, cell.message) for cell in solution.cells
              if cell.points is not None and not cell.passed]
    assert not failed and not solution.error
    assert solution.score == gradebook.max_score > 0
    assert student.score == 0, [cell.grade_id for cell in student.cells if cell.passed]
    written = [cell.grade_id for cell in gradebook.cells if cell.manual]
    assert solution.provisional == written == student.provisional
