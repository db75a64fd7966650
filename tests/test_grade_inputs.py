"""Tests for what ``course grade`` accepts as a submission and how it names the rows.

A submission is read only when it is a regular file under the size limit
(``course.grading._plan.read_submission``), and every row gets a safe, distinct name that
does not depend on the order of the arguments (``course.grading._plan.name_submissions``).
Only the last test starts a kernel.
"""
import asyncio
import json
import os
import socket
import threading
import unicodedata

import nbformat
import pytest

from course.grading import _plan, grade, markup, release

RELU = "def relu(x):\n    ### BEGIN SOLUTION\n    return np.maximum(0, x)\n    ### END SOLUTION"


def source_notebook():
    return markup.notebook([
        markup.code_cell("import numpy as np\n\n"
                         "def check(what, got, expected):\n"
                         "    assert np.allclose(got, expected), f'{what}: {got} != {expected}'"),
        markup.solution_cell(RELU, "ex_relu"),
        markup.test_cell("check('relu(-1), relu(2)', (relu(-1.0), relu(2.0)), (0, 2))", "t_relu", 1),
    ])


# --- names --------------------------------------------------------------------------------

def test_a_long_name_is_cut_to_100_bytes_on_a_character_boundary():
    (ascii_name,) = grade.submission_names(["x" * 240 + ".ipynb"])
    assert ascii_name == "x" * 100
    (wide,) = grade.submission_names(["é" * 240 + ".ipynb"])  # two bytes each
    assert wide == "é" * 50 and len(wide.encode()) == 100
    (odd,) = grade.submission_names(["a" + "é" * 240 + ".ipynb"])
    assert len(odd.encode()) == 99 and odd.encode().decode() == odd


def test_long_names_that_agree_in_their_first_100_bytes_stay_apart():
    names = grade.submission_names(["x" * 240 + "a.ipynb", "x" * 240 + "b.ipynb"])
    assert names == ["x" * 100, "x" * 98 + "-2"]
    assert all(len(name.encode()) <= 100 for name in names)


def test_bytes_that_are_not_utf8_are_replaced():
    raw = os.fsdecode(b"caf\xe9-\xff.ipynb")  # Latin-1 bytes, as os.listdir gives them
    (name,) = grade.submission_names([raw])
    assert name == "caf_-" and name.encode("utf-8")
    (from_bytes,) = grade.submission_names([b"b\xffob.ipynb"])
    assert from_bytes == "b_ob"
    (surrogate,) = grade.submission_names(["x\ud800y.ipynb"])  # not even fsencode takes it
    assert surrogate == "x_y"
    assert grade.shown_path(raw) == "caf\\xe9-\\xff.ipynb"
    assert grade.shown_path("x\ud800y") == "x\\xed\\xa0\\x80y"


@pytest.mark.parametrize("stem", ["-2+3", "=HYPERLINK(1)", "+cmd", "@SUM(A1)", "＝cmd", "-", "+"])
def test_no_name_starts_like_a_spreadsheet_formula(stem):
    (name,) = grade.submission_names([f"{stem}.ipynb"])
    assert name and name[0] not in "-=+@"


def test_names_are_nfkc_normalised():
    (name,) = grade.submission_names(["ｆｕｌｌ.ipynb"])
    assert name == "full"
    (composed,) = grade.submission_names([unicodedata.normalize("NFD", "josé.ipynb")])
    assert composed == "josé"


def test_control_characters_are_replaced():
    names = grade.submission_names(["a\nb.ipynb", "tab\there\x1b[31m.ipynb", "\x00\x7f.ipynb"])
    assert names == ["a_b", "tab_here_31m", "notebook"]
    assert not any(char.isspace() or unicodedata.category(char)[0] == "C"
                   for name in names for char in name)


def test_collisions_do_not_depend_on_the_order_of_the_arguments():
    paths = ["d/ｆｕｌｌ.ipynb", "d/full.ipynb", "d/Full.ipynb", "d/full!.ipynb", "e/x y.ipynb",
             "e/x_y.ipynb", "e/x y.ipynb", "e/x_y-2.ipynb"]

    def mapping(order):
        named = {}
        for path, name in zip(order, grade.submission_names(order)):
            named.setdefault(path, []).append(name)
        return {path: sorted(names) for path, names in named.items()}

    assert mapping(paths) == mapping(list(reversed(paths))) == mapping(sorted(paths)) == {
        "d/Full.ipynb": ["Full"], "d/full.ipynb": ["full-2"], "d/full!.ipynb": ["full-3"],
        "d/ｆｕｌｌ.ipynb": ["full-4"], "e/x_y.ipynb": ["x_y"], "e/x_y-2.ipynb": ["x_y-2"],
        "e/x y.ipynb": ["x_y-3", "x_y-4"]}


def test_a_numbered_name_says_whose_name_it_shares():
    names, taken = grade.name_submissions(["a b.ipynb", "a_b.ipynb", "c.ipynb"])
    assert names == ["a_b-2", "a_b", "c"] and taken == [1, None, None]


def test_numbered_names_are_listed_for_review(tmp_path, monkeypatch):
    async def fake(assignment, reference, name, path, limits, slots):
        return grade.SubmissionResult(name, grade.shown_path(path), [], review=["as before"])

    monkeypatch.setattr(grade, "_grade_one", fake)
    async def no_reference(assignment, limits, slots):
        return {}

    monkeypatch.setattr(grade, "_reference", no_reference)
    source = notebook_file(tmp_path / "source.ipynb")
    paths = [tmp_path / "a b.ipynb", tmp_path / "a_b.ipynb", tmp_path / "a_b.ipynb"]
    gradebook = grade.grade_submissions(source, paths, tmp_path / "out")
    assert [result.name for result in gradebook.submissions] == ["a_b-3", "a_b", "a_b-2"]
    assert [result.review for result in gradebook.submissions] == [
        [f"named 'a_b-3' because 'a_b' is the name of {str(paths[1])!r}", "as before"],
        ["as before"],
        [f"named 'a_b-2' because 'a_b' is the name of {str(paths[1])!r} (the same file, "
         f"given twice)", "as before"]]
    assert [result.shares_name_with for result in gradebook.submissions] == [
        str(paths[1]), "", str(paths[1])]
    data = json.loads((tmp_path / "out" / "gradebook.json").read_text(encoding="utf-8"))
    assert data["submissions"][0]["review"][0].startswith("named 'a_b-3'")


def test_names_are_distinct_ignoring_case():
    names = grade.submission_names(["Alice.ipynb", "alice.ipynb", "ALICE.ipynb"])
    assert len({name.casefold() for name in names}) == 3


# --- files --------------------------------------------------------------------------------

def notebook_file(path):
    nbformat.write(release.release_notebook(source_notebook()), path)
    return path


def read_in_thread(path):
    """``read_submission(path)``'s error, from a thread, so that a test fails rather than
    hangs if the read blocks."""
    outcome = {}

    def read():
        try:
            _plan.read_submission(path)
        except ValueError as exc:
            outcome["error"] = str(exc)
        else:
            outcome["error"] = None

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "reading the submission blocked"
    return outcome["error"]


def test_a_regular_notebook_is_read(tmp_path):
    path = notebook_file(tmp_path / "good.ipynb")
    assert _plan.read_submission(path) == path.read_text(encoding="utf-8")


def test_a_fifo_is_not_opened(tmp_path):
    fifo = tmp_path / "x.ipynb"
    os.mkfifo(fifo)
    error = read_in_thread(fifo)
    assert "named pipe" in error and "not opened" in error
    assignment = grade.load_source(notebook_file(tmp_path / "source.ipynb"))
    with pytest.raises(ValueError, match="named pipe"):
        grade.read_answers(fifo, assignment)


def test_a_symbolic_link_is_not_followed(tmp_path):
    target = notebook_file(tmp_path / "target.ipynb")
    link = tmp_path / "link.ipynb"
    link.symlink_to(target)
    assert "symbolic link" in read_in_thread(link)
    dangling = tmp_path / "dangling.ipynb"
    dangling.symlink_to(tmp_path / "nowhere.ipynb")
    assert "symbolic link" in read_in_thread(dangling)


def test_a_folder_a_socket_and_a_device_are_not_opened(tmp_path):
    (tmp_path / "folder.ipynb").mkdir()
    assert "a folder" in read_in_thread(tmp_path / "folder.ipynb")
    if os.path.exists("/dev/null"):
        assert "character device" in read_in_thread("/dev/null")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s.ipynb"))
        assert "socket" in read_in_thread(tmp_path / "s.ipynb")


def test_a_missing_file_gets_a_reason(tmp_path):
    assert "could not be read" in read_in_thread(tmp_path / "missing.ipynb")


def test_a_file_over_the_size_limit_is_not_read(tmp_path, monkeypatch):
    path = notebook_file(tmp_path / "big.ipynb")
    size = path.stat().st_size
    monkeypatch.setattr(_plan, "MAX_SUBMISSION_BYTES", size)
    assert _plan.read_submission(path)  # exactly at the limit
    monkeypatch.setattr(_plan, "MAX_SUBMISSION_BYTES", size - 1)
    error = read_in_thread(path)
    assert f"{size} bytes" in error and "limit" in error


def test_bytes_that_are_not_utf8_inside_a_file_are_unreadable(tmp_path):
    path = tmp_path / "latin1.ipynb"
    path.write_bytes(b'{"cells": "\xe9"}')
    assert "not a readable notebook" in read_in_thread(path)


def test_an_unreadable_submission_gets_zeros_and_a_printable_reason(tmp_path):
    assignment = grade.load_source(notebook_file(tmp_path / "source.ipynb"))
    path = os.fsdecode(b"bad\xff.ipynb")
    result = grade._unreadable(assignment, "bad", path, f"no such file: {path}")
    assert result.score == 0 and [cell.points for cell in result.cells] == [0]
    assert result.error == "no such file: bad\\xff.ipynb" and result.path == "bad\\xff.ipynb"
    assert all(cell.message.startswith("Not graded: ") for cell in result.cells)


# --- one batch ----------------------------------------------------------------------------

@pytest.mark.kernel
@pytest.mark.slow
def test_a_batch_with_a_fifo_and_a_symlink_grades_the_good_one(tmp_path):
    source = tmp_path / "source.ipynb"
    nbformat.write(source_notebook(), source)
    good = tmp_path / "good.ipynb"
    nb = release.release_notebook(source_notebook())
    next(cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade_id")
         == "ex_relu").source = "def relu(x):\n    return np.maximum(0, x)"
    nbformat.write(nb, good)
    fifo = tmp_path / "pipe.ipynb"
    os.mkfifo(fifo)
    link = tmp_path / "good copy.ipynb"
    link.symlink_to(good)
    odd = tmp_path / os.fsdecode(b"=odd\xff\n.ipynb")
    odd.write_bytes(b"{")
    out = tmp_path / "out"
    gradebook = grade.grade_submissions(source, [fifo, link, good, odd], out, jobs=2,
                                        timeout=30, memory_limit=2**30)
    rows = {result.name: result for result in gradebook.submissions}
    assert list(rows) == ["pipe", "good_copy", "good", "odd"]
    assert rows["good"].score == 1 and not rows["good"].error
    assert rows["pipe"].score == 0 and "named pipe" in rows["pipe"].error
    assert rows["good_copy"].score == 0 and "symbolic link" in rows["good_copy"].error
    assert rows["odd"].score == 0 and "not a readable notebook" in rows["odd"].error
    data = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    assert [row["file"] for row in data["submissions"]] == [
        str(fifo), str(link), str(good), str(tmp_path / "=odd\\xff\n.ipynb")]
    assert (out / "feedback" / "odd.md").exists()
    assert (out / "gradebook.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "pipe,0,0,1,", "good_copy,0,0,1,", "good,1,1,1,", "odd,0,0,1,"]


def test_a_cached_reference_run_is_keyed_by_the_library_too(monkeypatch):
    first = grade._library_hash()
    assert len(first) == 64 and grade._library_hash() is first  # computed once per process
    grade._library_hash.cache_clear()
    assert grade._library_hash() == first  # the same code, the same key

    class Step:
        kind, source = "test", "check('x', 1, 1)"

    class Assignment:
        def reference_plan(self):
            return [Step()]

    runs = []

    async def fake_run_plan(steps, limits):
        runs.append(steps)

    monkeypatch.setattr(grade, "run_plan", fake_run_plan)
    monkeypatch.setattr(grade, "_records", lambda assignment, steps, plan: {("x",): len(runs)})
    monkeypatch.setattr(grade, "_REFERENCES", {})
    limits = type("Limits", (), {"sandbox": False, "memory_limit": 1})()

    def reference(library):
        monkeypatch.setattr(grade, "_library_hash", lambda: library)
        return asyncio.run(grade._reference(Assignment(), limits, asyncio.Semaphore(1)))

    assert reference("code A") == {("x",): 1}
    assert reference("code A") == {("x",): 1} and len(runs) == 1  # the same library: reused
    assert reference("code B") == {("x",): 2} and len(runs) == 2  # another library: run again
