"""SYLLABUS.md agrees with the notebooks: every lesson is in its table with the points its
solution notebook carries (graded automatically and by hand), and the totals are the course's
targets: at least 140 graded points, at least 15% of them graded by hand. Every lesson states
its learning objectives and how long it takes, and has a written question."""
import re
from pathlib import Path

import pytest

from course.grading import release

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def points(path):
    auto = manual = 0
    for cell in release.read_notebook(path).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            if meta.get("solution"):
                manual += meta["points"]
            else:
                auto += meta["points"]
    return auto, manual


def table():
    """``{lesson number: (auto, manual)}`` from SYLLABUS.md's table of lessons."""
    rows = {}
    for line in (ROOT / "SYLLABUS.md").read_text().splitlines():
        match = re.match(r"\|\s*(\d\d)\s*\|.*\|\s*(\d+)\s*\|\s*(\d+)\s*\|[^|]*\|\s*$", line)
        if match:
            rows[match[1]] = (int(match[2]), int(match[3]))
    return rows


def test_the_syllabus_lists_every_lesson_with_its_points():
    expected = {path.name[:2]: points(path) for path in LESSONS}
    assert table() == expected


def test_the_course_has_enough_points_and_enough_written_answers():
    auto = sum(points(path)[0] for path in LESSONS)
    manual = sum(points(path)[1] for path in LESSONS)
    assert auto + manual >= 140 and manual >= 0.15 * (auto + manual), (auto, manual)


@pytest.mark.parametrize("path", LESSONS, ids=lambda path: path.stem)
def test_a_lesson_states_objectives_and_time_and_asks_a_written_question(path):
    cells = release.read_notebook(path).cells
    opening = "\n".join(cell.source for cell in cells[:6] if cell.cell_type == "markdown").lower()
    assert "objective" in opening or "you will" in opening or "learning goals" in opening
    assert re.search(r"\b(\d+|an?|one|two|three|four|five)\s*(-|–|to)?\s*\d*\s*"
                     r"(minutes|min|hours?)\b", opening)
    assert points(path)[1] > 0
