"""The markup of a solution notebook, and helpers to build its cells.

A solution notebook uses nbgrader's markup, so it also works with nbgrader itself:

- every cell that takes part in grading carries ``cell.metadata.nbgrader``::

      {"grade": bool, "grade_id": str, "locked": bool, "points": number (graded cells only),
       "schema_version": 3, "solution": bool, "task": False}

- in an exercise cell (``solution: True``) the answer sits between the lines
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
- in a check cell (``grade: True``) tests the students must not see sit between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

The helpers below return ``nbformat`` cells with that metadata filled in, so a lesson can be
written as a short Python script::

    import nbformat
    from course.grading import markup

    nb = markup.notebook([
        markup.markdown_cell("## Exercise 1: a weighted sum"),
        markup.solution_cell(
            "def weighted_sum(x, w):\\n"
            "    ### BEGIN SOLUTION\\n"
            "    return sum(xi * wi for xi, wi in zip(x, w))\\n"
            "    ### END SOLUTION",
            grade_id="ex_weighted_sum"),
        markup.test_cell("assert weighted_sum([1, 2], [3, 4]) == 11", "test_weighted_sum", 1),
    ])
    nbformat.write(nb, "solutions/00_welcome.ipynb")
"""
import hashlib
import re

import nbformat

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"

#: nbval's cell tag for a cell whose output is a measurement (a timing, a machine's name).
IGNORE_OUTPUT_TAG = "nbval-ignore-output"

SCHEMA_VERSION = 3
_CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # what nbformat accepts as a cell id


def nbgrader_metadata(grade_id, *, grade=False, solution=False, locked=False, points=None):
    """The ``nbgrader`` cell metadata (schema 3); ``points`` only for graded cells."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": SCHEMA_VERSION, "solution": solution, "task": False}
    if grade:
        if points is None:
            raise ValueError(f"graded cell {grade_id!r} needs points")
        meta["points"] = points
    return meta


def _with_tags(cell, ignore_output):
    if ignore_output:
        cell.metadata["tags"] = [IGNORE_OUTPUT_TAG]
    return cell


def code_cell(source, *, ignore_output=False):
    """A plain code cell; ``ignore_output=True`` tells nbval not to compare its output."""
    return _with_tags(nbformat.v4.new_code_cell(source), ignore_output)


def markdown_cell(text):
    """A plain markdown cell (prose, math, pictures)."""
    return nbformat.v4.new_markdown_cell(text)


def solution_cell(source, grade_id):
    """An exercise: code whose ``### BEGIN SOLUTION`` region students replace.

    ``grade_id`` names the exercise (for example ``"ex_dot_product"``); the student version
    raises ``NotImplementedError`` with that name where the solution was.
    """
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = nbgrader_metadata(grade_id, solution=True)
    return cell


def answer_cell(text, grade_id, points=None):
    """A written answer (markdown); the student version shows "YOUR ANSWER HERE".

    With ``points`` the answer is graded by hand and counts towards the score.
    """
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["nbgrader"] = nbgrader_metadata(
        grade_id, solution=True, grade=points is not None, points=points)
    return cell


def test_cell(source, grade_id, points, *, ignore_output=False):
    """A check cell worth ``points``: visible asserts, plus an optional hidden-tests region.

    Students cannot edit or delete it; the autograder runs the full version.
    """
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = nbgrader_metadata(grade_id, grade=True, locked=True, points=points)
    return _with_tags(cell, ignore_output)


test_cell.__test__ = False  # a cell builder, not a pytest test, when imported into a test module


def locked_cell(source, grade_id=None, *, ignore_output=False):
    """Code that students can run but not edit or delete (setup, imports, data).

    Without ``grade_id`` one is derived from the source, so it stays the same on every build.
    """
    if grade_id is None:
        grade_id = "locked_" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:10]
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = nbgrader_metadata(grade_id, locked=True)
    return _with_tags(cell, ignore_output)


def notebook(cells):
    """A Python 3 notebook holding ``cells``, with cell ids that are the same on every build.

    A cell's id is its ``grade_id`` when that is a valid id, else ``cell-<index>``.
    """
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        cell["id"] = grade_id if _CELL_ID.fullmatch(grade_id) else f"cell-{index}"
    return nb
