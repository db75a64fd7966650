"""Tests for course.grading.release and course.grading.markup, and for the course's notebooks:
lessons/ must be the up-to-date student version of solutions/."""
import json
from pathlib import Path

import nbformat
import pytest

from course import cli
from course.grading import grade, markup, release

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, LESSONS = ROOT / "solutions", ROOT / "lessons"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

EXERCISE = '''\
def weighted_sum(x, w):
    """Return sum_i x[i] * w[i]."""
    ### BEGIN SOLUTION
    total = 0.0
    for xi, wi in zip(x, w):
        total += xi * wi
    return total
    ### END SOLUTION'''

CHECK = '''\
assert weighted_sum([1, 2], [3, 4]) == 11, "expected 1*3 + 2*4 = 11"
### BEGIN HIDDEN TESTS
assert weighted_sum([], []) == 0
### END HIDDEN TESTS
print("ok")'''


def small_notebook():
    """A solution notebook with one cell of each kind, as if it had been run and saved."""
    nb = markup.notebook([
        markup.markdown_cell("# Weighted sums"),
        markup.code_cell("import math"),
        markup.solution_cell(EXERCISE, "ex_weighted_sum"),
        markup.test_cell(CHECK, "test_weighted_sum", 2),
        markup.answer_cell("Because addition commutes.", "q_order", points=1),
        markup.locked_cell("data = [1.0, 2.0, 3.0]"),
    ])
    for count, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.execution_count = count
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
            cell.metadata["execution"] = {"iopub.status.idle": "2024-01-01T00:00:00.000000Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def cell_by_id(nb, grade_id):
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


# ---------------------------------------------------------------- one notebook

def test_solution_region_becomes_a_stub_naming_the_exercise():
    student = release.release_notebook(small_notebook())
    source = cell_by_id(student, "ex_weighted_sum").source
    assert source.splitlines() == [
        "def weighted_sum(x, w):",
        '    """Return sum_i x[i] * w[i]."""',
        '    raise NotImplementedError("ex_weighted_sum: replace this line with your code")',
    ]


def test_student_code_raises_not_implemented_error_with_the_exercise_name():
    student = release.release_notebook(small_notebook())
    namespace = {}
    exec(cell_by_id(student, "ex_weighted_sum").source, namespace)
    with pytest.raises(NotImplementedError, match="ex_weighted_sum"):
        namespace["weighted_sum"]([1], [2])


def test_each_stub_keeps_the_indentation_of_its_region():
    source = ("def step(z):\n"
              "    out = []\n"
              "    for zi in z:\n"
              "        ### BEGIN SOLUTION\n"
              "        out.append(1 if zi >= 0 else 0)\n"
              "        ### END SOLUTION\n"
              "    return out\n"
              "### BEGIN SOLUTION\n"
              "answer = step([-1, 2])\n"
              "### END SOLUTION")
    nb = markup.notebook([markup.solution_cell(source, "ex_step")])
    lines = release.release_notebook(nb).cells[0].source.splitlines()
    stub = 'raise NotImplementedError("ex_step: replace this line with your code")'
    assert lines == ["def step(z):", "    out = []", "    for zi in z:", "        " + stub,
                     "    return out", stub]
    compile("\n".join(lines), "<student cell>", "exec")  # still valid Python


def test_an_exercise_without_a_marked_region_is_replaced_whole():
    nb = markup.notebook([markup.solution_cell("answer = 42", "ex_answer")])
    source = release.release_notebook(nb).cells[0].source
    assert source == release.code_stub("ex_answer")
    assert "42" not in source


def test_hidden_tests_are_removed_and_visible_tests_kept():
    source = cell_by_id(release.release_notebook(small_notebook()), "test_weighted_sum").source
    assert source.splitlines() == [
        'assert weighted_sum([1, 2], [3, 4]) == 11, "expected 1*3 + 2*4 = 11"',
        'print("ok")',
    ]


def test_written_answer_becomes_your_answer_here():
    answer = cell_by_id(release.release_notebook(small_notebook()), "q_order")
    assert answer.source == "YOUR ANSWER HERE"
    assert "editable" not in answer.metadata


def test_outputs_execution_counts_and_timings_are_cleared():
    source = small_notebook()
    student = release.release_notebook(source)
    code = [cell for cell in student.cells if cell.cell_type == "code"]
    assert len(code) == 4
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert all("execution" not in cell.metadata for cell in code)
    assert "widgets" not in student.metadata
    # the source notebook is left as it was (release_notebook is a pure function)
    assert all(cell.outputs for cell in source.cells if cell.cell_type == "code")
    assert "widgets" in source.metadata


def test_check_and_locked_cells_are_read_only_and_exercises_stay_editable():
    student = release.release_notebook(small_notebook())
    check, locked = cell_by_id(student, "test_weighted_sum"), student.cells[5]
    assert locked.metadata.nbgrader["locked"] and not locked.metadata.nbgrader["grade"]
    for cell in (check, locked):
        assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False
    exercise = cell_by_id(student, "ex_weighted_sum").metadata
    assert "editable" not in exercise and "deletable" not in exercise
    assert "editable" not in student.cells[1].metadata  # a plain code cell is untouched


def test_nbgrader_metadata_is_carried_over():
    source = small_notebook()
    student = release.release_notebook(source)
    for before, after in zip(source.cells, student.cells):
        assert after.metadata.get("nbgrader") == before.metadata.get("nbgrader")
        assert after.get("id") == before.get("id")


# ---------------------------------------------------------------- malformed markup

def _solution(source, grade_id="ex_a"):
    return markup.solution_cell(source, grade_id)


def _without_points():
    cell = markup.test_cell("assert True", "test_a", 1)
    del cell.metadata.nbgrader["points"]
    return cell


MALFORMED = {
    "begin without end": (_solution("### BEGIN SOLUTION\nx = 1"),
                          "cell 1 (ex_a)",
                          "'### BEGIN SOLUTION' on line 1 has no '### END SOLUTION'"),
    "end without begin": (_solution("x = 1\n### END SOLUTION"),
                          "cell 1 (ex_a)", "'### END SOLUTION' on line 2 has no"),
    "hidden tests left open": (markup.test_cell("### BEGIN HIDDEN TESTS\nassert True", "test_a", 1),
                               "cell 1 (test_a)", "has no '### END HIDDEN TESTS'"),
    "nested regions": (_solution("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n"
                                 "### END HIDDEN TESTS\n### END SOLUTION"),
                       "cell 1 (ex_a)", "on line 2 is inside the region"),
    "markers without metadata": (markup.code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
                                 "cell 1:", "no nbgrader metadata"),
    "solution in a check cell": (markup.test_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
                                                  "test_a", 1),
                                 "cell 1 (test_a)", "is not an exercise"),
    "graded cell without points": (_without_points(), "cell 1 (test_a)", "needs points"),
    "exercise without grade_id": (_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", ""),
                                  "cell 1", "needs a grade_id"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_markup_is_an_error_naming_notebook_and_cell(case):
    cell, where, problem = MALFORMED[case]
    nb = markup.notebook([markup.markdown_cell("# Title"), cell])
    with pytest.raises(release.MarkupError) as exc:
        release.release_notebook(nb, "01_perceptron.ipynb")
    message = str(exc.value)
    assert message.startswith("01_perceptron.ipynb, " + where), message
    assert problem in message


def test_duplicate_grade_ids_are_an_error_naming_both_cells():
    nb = markup.notebook([markup.solution_cell("x = 1", "ex_a"), markup.markdown_cell("text"),
                          markup.test_cell("assert x == 1", "ex_a", 1)])
    with pytest.raises(release.MarkupError, match=r"nb\.ipynb, cell 2: grade_id 'ex_a' is already "
                                                  r"used by cell 0"):
        release.release_notebook(nb, "nb.ipynb")


# ---------------------------------------------------------------- the cell builders

def test_builders_write_nbgrader_schema_3_metadata():
    assert markup.solution_cell("x = 1", "ex_x").metadata.nbgrader == {
        "grade": False, "grade_id": "ex_x", "locked": False, "schema_version": 3,
        "solution": True, "task": False}
    assert markup.test_cell("assert x", "test_x", 3).metadata.nbgrader == {
        "grade": True, "grade_id": "test_x", "locked": True, "points": 3, "schema_version": 3,
        "solution": False, "task": False}
    answer = markup.answer_cell("text", "q_x", points=2)
    assert answer.cell_type == "markdown"
    assert answer.metadata.nbgrader["solution"] and answer.metadata.nbgrader["points"] == 2
    with pytest.raises(ValueError, match="needs points"):
        markup.nbgrader_metadata("test_x", grade=True)


def test_ignore_output_sets_nbvals_tag():
    tagged = markup.code_cell("t = time()", ignore_output=True)
    assert tagged.metadata.tags == ["nbval-ignore-output"]
    assert "tags" not in markup.code_cell("x = 1").metadata


def test_locked_cell_ids_and_notebook_cell_ids_are_stable():
    first, again = markup.locked_cell("import numpy"), markup.locked_cell("import numpy")
    assert first.metadata.nbgrader.grade_id == again.metadata.nbgrader.grade_id
    other = markup.locked_cell("import math")
    assert first.metadata.nbgrader.grade_id != other.metadata.nbgrader.grade_id
    texts = {release.notebook_text(small_notebook()) for _ in range(2)}
    assert len(texts) == 1
    ids = [cell.id for cell in small_notebook().cells]
    assert ids[:3] == ["cell-0", "cell-1", "ex_weighted_sum"]


# ---------------------------------------------------------------- folders

@pytest.fixture
def source_dir(tmp_path):
    """A folder of two solution notebooks, plus a checkpoint that must be ignored."""
    folder = tmp_path / "solutions"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    nbformat.write(small_notebook(), folder / "01_sums.ipynb")
    intro = markup.notebook([markup.solution_cell("y = 2", "ex_y")])
    nbformat.write(intro, folder / "00_intro.ipynb")
    nbformat.write(small_notebook(), folder / ".ipynb_checkpoints" / "01_sums-checkpoint.ipynb")
    return folder


def test_release_writes_one_student_notebook_per_source(source_dir, tmp_path):
    out = tmp_path / "lessons"
    written = release.release(source_dir, out)
    assert [path.name for path in written] == ["00_intro.ipynb", "01_sums.ipynb"]
    assert sorted(path.name for path in out.iterdir()) == ["00_intro.ipynb", "01_sums.ipynb"]
    text = (out / "01_sums.ipynb").read_text(encoding="utf-8")
    assert not any(marker in text for marker in MARKERS)
    assert "ex_weighted_sum: replace this line with your code" in text


def test_release_is_deterministic(source_dir, tmp_path):
    release.release(source_dir, tmp_path / "a")
    release.release(source_dir, tmp_path / "b")
    for name in ("00_intro.ipynb", "01_sums.ipynb"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert release.release(source_dir, tmp_path / "a") == []  # nothing left to write


def test_cells_saved_without_ids_get_the_same_ids_every_time(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    data = json.loads(nbformat.writes(small_notebook()))
    for cell in data["cells"]:
        del cell["id"]
    (folder / "nb.ipynb").write_text(json.dumps(data), encoding="utf-8")
    first = release.student_versions(folder)
    assert release.student_versions(folder) == first
    assert '"id": "cell-2"' in first["nb.ipynb"]


def test_check_names_modified_missing_and_extra_notebooks(source_dir, tmp_path):
    out = tmp_path / "lessons"
    release.release(source_dir, out)
    assert release.check(source_dir, out) == []
    edited = out / "01_sums.ipynb"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Weighted", "weighted"),
                      encoding="utf-8")
    assert release.check(source_dir, out) == ["01_sums.ipynb"]
    (out / "00_intro.ipynb").unlink()
    nbformat.write(markup.notebook([]), out / "99_old.ipynb")
    assert release.differences(source_dir, out) == {
        "00_intro.ipynb": "missing", "01_sums.ipynb": "out of date",
        "99_old.ipynb": f"has no source notebook in {source_dir} (delete it)"}


def test_check_of_a_missing_output_folder_names_every_notebook(source_dir, tmp_path):
    assert release.check(source_dir, tmp_path / "nowhere") == ["00_intro.ipynb", "01_sums.ipynb"]


def test_command_line_release_then_check(source_dir, tmp_path, capsys):
    out = tmp_path / "lessons"
    assert cli.main(["release", str(source_dir), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / '00_intro.ipynb'}" in printed and "2 written" in printed
    assert cli.main(["release", str(source_dir), str(out), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    (out / "00_intro.ipynb").write_text("{}", encoding="utf-8")
    assert cli.main(["release", str(source_dir), str(out), "--check"]) == 1
    printed = capsys.readouterr().out
    assert f"{out / '00_intro.ipynb'}: out of date" in printed
    assert "01_sums" not in printed


def test_command_line_reports_malformed_markup(tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    nbformat.write(markup.notebook([markup.solution_cell("### BEGIN SOLUTION", "ex_a")]),
                   folder / "bad.ipynb")
    assert release.main(folder, tmp_path / "out") == 1
    assert "error: bad.ipynb, cell 0 (ex_a):" in capsys.readouterr().err
    assert not (tmp_path / "out" / "bad.ipynb").exists()


def test_release_refuses_to_overwrite_the_solutions(source_dir):
    with pytest.raises(ValueError, match="overwrite the solutions"):
        release.release(source_dir, source_dir)


# ---------------------------------------------------------------- the course's own notebooks

SOLUTION_NAMES = [path.name for path in release.source_notebooks(SOLUTIONS)]
needs_solutions = pytest.mark.skipif(not SOLUTION_NAMES, reason="solutions/ holds no notebooks yet")


@needs_solutions
def test_lessons_are_up_to_date_with_the_solutions(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    status = cli.main(["release", "solutions", "lessons", "--check"])
    assert status == 0, capsys.readouterr().out


def exercise_ids(nb):
    return [cell.metadata.nbgrader.grade_id for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")]


@pytest.mark.kernel
@needs_solutions
@pytest.mark.parametrize("name", SOLUTION_NAMES or ["none"])
def test_student_notebook_hides_the_solutions_and_raises_in_every_exercise(name):
    """Run the student notebook top to bottom, as a student who has written nothing would.

    Each exercise must stop with a NotImplementedError that names it: raised by the exercise
    cell itself, or, when the exercise defines a function, by the cells that call it.
    """
    nbclient = pytest.importorskip("nbclient")
    path = LESSONS / name
    assert path.exists(), f"{path} is missing: run `course release solutions lessons`"
    text = path.read_text(encoding="utf-8")
    assert not [marker for marker in MARKERS if marker in text]
    nb = nbformat.reads(text, as_version=4)
    exercises = exercise_ids(nb)
    assert exercises, f"{name} has no exercise cells"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(LESSONS)}})
    waiting = set(exercises)  # exercises not yet seen raising
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            for out in cell.outputs:
                if out.output_type == "error" and out.ename == "NotImplementedError":
                    waiting.discard(out.evalue.split(":")[0])
            if not waiting:
                break  # the rest of the notebook cannot change the outcome
    assert not waiting, f"{name}: no cell raised NotImplementedError for {sorted(waiting)}"


# --- the student repository ---------------------------------------------------------------

def _secret_lines(notebook):
    """Lines of the solutions and of the hidden tests of a solution notebook (long ones that
    appear nowhere else in it)."""
    solution, hidden, public = set(), set(), set()
    for cell in release.read_notebook(notebook).cells:
        meta = cell.metadata.get("nbgrader", {})
        lines = cell.source.splitlines()
        if meta.get("solution"):
            marks = [i for i, line in enumerate(lines) if "BEGIN SOLUTION" in line
                     or "END SOLUTION" in line] or [-1, len(lines)]
            inside = {i for start, end in zip(marks[::2], marks[1::2])
                      for i in range(start + 1, end)}
            solution |= {lines[i].strip() for i in inside}
            public |= {line.strip() for i, line in enumerate(lines) if i not in inside}
        elif meta.get("grade"):
            for text, is_hidden in grade.split_hidden(cell.source):
                (hidden if is_hidden else public).update(line.strip() for line in text.splitlines())
        else:
            public |= {line.strip() for line in lines}
    return ({line for line in solution - public if len(line) >= 25},
            {line for line in hidden - public if len(line) >= 25})


@pytest.mark.slow
def test_the_student_repository_holds_no_solution_and_no_hidden_test(tmp_path, capsys):
    target = tmp_path / "student"
    assert cli.main(["release", str(SOLUTIONS), str(tmp_path / "lessons"), "--student-repo",
                     str(target), "--github", "school/nn-course"]) == 0
    assert "wrote the student repository" in capsys.readouterr().out
    names = {path.name for path in target.iterdir()}
    assert names == {"course", "binder", "lessons", "pyproject.toml", "LICENSE", "README.md"}
    assert "mybinder.org/v2/gh/school/nn-course/HEAD" in (target / "README.md").read_text()
    released = sorted(path.name for path in (target / "lessons").glob("*.ipynb"))
    assert released == sorted(path.name for path in SOLUTIONS.glob("*.ipynb"))
    texts = {path: path.read_text(errors="replace") for path in target.rglob("*")
             if path.is_file()}
    lines = {path: {line.strip() for line in (
        "\n".join(cell.source for cell in release.read_notebook(path).cells)
        if path.suffix == ".ipynb" else text).splitlines()} for path, text in texts.items()}
    assert not any("BEGIN HIDDEN TESTS" in text or "BEGIN SOLUTION" in text
                   for path, text in texts.items() if "lessons" in path.parts)
    for notebook in sorted(SOLUTIONS.glob("*.ipynb")):
        solution, hidden = _secret_lines(notebook)
        for path, present in lines.items():
            library = "course" in path.relative_to(target).parts[:1]
            found = (hidden | (set() if library else solution)) & present
            assert not found, (path, sorted(found)[:3])
    # a second run into the same folder refuses rather than mixing two versions
    assert cli.main(["release", str(SOLUTIONS), str(tmp_path / "lessons"), "--student-repo",
                     str(target)]) == 1
    assert "is not empty" in capsys.readouterr().err
