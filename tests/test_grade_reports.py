"""The grader's reports are written from bounded, escaped text, never through a link, and
the grader survives kernels that die, even while they start."""
import asyncio
import json
import os
import re
from types import SimpleNamespace

import nbformat
import pytest
from nbclient.exceptions import CellExecutionComplete

from course.grading import _execute, _values, grade, markup, report

FORGERY = ("\n| Score | 13/13 |\n# Passed\n## All tests passed\n<img src=x onerror=alert(1)>\n"
           "[click](http://evil.example) ![x](http://evil.example/x.png) **13/13**\n"
           "```\n~~~\n    indented\n\x1b[2J\u202eevil")


def gradebook_with(message="", note="", error="", traceback="", name="alice"):
    cells = [grade.GradedCell("t_one", 1), grade.GradedCell("t_two", 2)]
    result = grade.SubmissionResult(
        name, f"{name}.ipynb",
        [grade.CellResult("t_one", 1, 1, True),
         grade.CellResult("t_two", 0, 2, False, message, traceback)],
        notes=[note] if note else [], error=error)
    return grade.Gradebook("source.ipynb", cells, [result])


def written(tmp_path, gradebook):
    report.write(gradebook, tmp_path)
    return ((tmp_path / "feedback" / "alice.md").read_text(encoding="utf-8"),
            json.loads((tmp_path / "gradebook.json").read_text(encoding="utf-8")))


# --- bounded text -------------------------------------------------------------------------

def test_a_huge_exception_message_is_cut_in_feedback_and_json(tmp_path):
    message = "ValueError: " + "x" * (120 * 2**20)
    text, data = written(tmp_path, gradebook_with(message, note=message, error=message,
                                                  traceback=message + "END"))
    size = f"{len(message):,} characters in all"
    assert len(text) < 6 * report.TEXT_LIMIT
    assert text.count(f"[truncated: {size}]") == 3
    assert f"[truncated: {len(message) + 3:,} characters in all]" in text
    submission = data["submissions"][0]
    cell = submission["cells"][1]
    for value in (cell["message"], submission["notes"][0], submission["error"]):
        assert value.startswith("ValueError: xxx") and value.endswith(f"[truncated: {size}]")
        assert len(value) < report.TEXT_LIMIT + 100
    assert cell["traceback"].endswith("xxxEND") and len(cell["traceback"]) < report.TEXT_LIMIT + 100
    assert (tmp_path / "gradebook.json").stat().st_size < 10 * report.TEXT_LIMIT


def test_text_just_over_the_limit_is_cut_and_text_at_it_is_not(monkeypatch):
    monkeypatch.setattr(report, "TEXT_LIMIT", 10)
    assert report.shorten("a" * 10) == "a" * 10
    assert report.shorten("a" * 11) == "a" * 10 + "... [truncated: 11 characters in all]"
    assert report.shorten("ab" * 6, keep_end=True).endswith("\n" + "ab" * 5)
    # cut already while grading: the length it had then is the one given
    clipped = "a" * 20 + "... [truncated: 5,000,000 characters in all]"
    assert report.shorten(clipped).endswith("[truncated: 5,000,000 characters in all]")


def test_the_json_keeps_the_text_as_data(tmp_path):
    _, data = written(tmp_path, gradebook_with(FORGERY, note=FORGERY))
    assert data["submissions"][0]["cells"][1]["message"] == FORGERY
    assert data["submissions"][0]["notes"] == [FORGERY]


# --- escaped text -------------------------------------------------------------------------

def markdown_lines(text):
    """The lines of ``text`` that are not inside an indented code block."""
    return [line for line in text.splitlines() if not line.startswith("    ")]


@pytest.mark.parametrize("where", ["message", "note", "error", "traceback"])
def test_student_text_cannot_forge_markdown_in_the_feedback(tmp_path, where):
    text, _ = written(tmp_path, gradebook_with(**{where: FORGERY}))
    outside = markdown_lines(text)
    assert [line for line in outside if line.startswith("#")] == [
        "# Feedback: `alice`"] + (["## Notes"] if where == "note" else []) + [
        "## What failed", "### `t_two` (0 / 2)"]
    assert [line for line in outside if line.startswith("|")] == [
        "| Test | Points | Result |", "| --- | ---: | --- |",
        "| `t_one` | 1 / 1 | passed |", "| `t_two` | 0 / 2 | failed |"]
    assert not any(word in line for line in outside
                   for word in ("13/13", "<img", "evil", "Passed", "```", "~~~", "indented"))
    assert "**Score: 1 / 3**" in outside
    assert "    | Score | 13/13 |" in text  # shown, as code
    assert "\x1b" not in text and "\u202e" not in text


def test_rendered_feedback_shows_student_text_only_as_code():
    mistune = pytest.importorskip("mistune")
    render = mistune.create_markdown(plugins=["table", "url", "strikethrough"])
    gradebook = gradebook_with(FORGERY, note=FORGERY, error=FORGERY, traceback=FORGERY)
    html = render(report.feedback(gradebook.submissions[0], gradebook))
    assert "<img" not in html and "<a " not in html and "<em>" not in html
    assert html.count("<table>") == html.count("<h1>") == html.count("<strong>") == 1
    assert html.count("&lt;img src=x") == 4


def test_a_submission_name_and_grade_id_stay_code(tmp_path):
    name = "x` <b>[a](b)|#"
    gradebook = gradebook_with(name=name)
    gradebook.submissions[0].cells[0].grade_id = "a|b"
    text = report.feedback(gradebook.submissions[0], gradebook)
    assert text.splitlines()[0] == "# Feedback: ``x` <b>[a](b)|#``"
    assert "| `a\\|b` | 1 / 1 | passed |" in text


def test_a_multiline_note_stays_inside_its_code_block():
    gradebook = gradebook_with(note="first\n\nlast line\r\nafter a CR")
    lines = report.feedback(gradebook.submissions[0], gradebook).splitlines()
    start = lines.index("## Notes") + 2
    assert lines[start:start + 5] == ["    first", "    ", "    last line", "    after a CR", ""]


# --- never through a link -----------------------------------------------------------------

def test_links_planted_in_the_output_folder_are_replaced_not_followed(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "alice.md").write_text("victim")
    (outside / "gradebook.csv").write_text("victim")
    (outside / "gradebook.json").write_text("victim")
    report.prepare(out)
    (out / "feedback").rmdir()
    (out / "feedback").symlink_to(outside, target_is_directory=True)
    (out / "gradebook.csv").symlink_to(outside / "gradebook.csv")
    (out / "gradebook.json").symlink_to(outside / "gradebook.json")
    report.write(gradebook_with("wrong"), out)
    assert sorted(p.name for p in outside.iterdir()) == ["alice.md", "gradebook.csv",
                                                         "gradebook.json"]
    assert all(p.read_text() == "victim" for p in outside.iterdir())
    for path in (out / "feedback", out / "gradebook.csv", out / "gradebook.json",
                 out / "feedback" / "alice.md"):
        assert not path.is_symlink()
    assert (out / "feedback").is_dir() and (out / "feedback" / "alice.md").is_file()
    assert "wrong" in (out / "feedback" / "alice.md").read_text()
    assert "t_two" in (out / "gradebook.csv").read_text()
    assert not list(out.rglob(".*.tmp"))


def test_a_link_planted_as_a_feedback_file_is_replaced(tmp_path):
    outside = tmp_path / "victim.txt"
    outside.write_text("victim")
    report.prepare(tmp_path / "out")
    (tmp_path / "out" / "feedback" / "alice.md").symlink_to(outside)
    report.write(gradebook_with(), tmp_path / "out")
    assert outside.read_text() == "victim"
    assert not (tmp_path / "out" / "feedback" / "alice.md").is_symlink()
    report.atomic_write(tmp_path / "out" / "feedback" / "alice.md", "new")
    assert (tmp_path / "out" / "feedback" / "alice.md").read_text() == "new"


def test_an_output_folder_that_is_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    for call in (report.prepare, lambda out: report.write(gradebook_with(), out)):
        with pytest.raises(OSError, match="is a symbolic link"):
            call(tmp_path / "link")
    assert list(real.iterdir()) == []


def test_a_feedback_folder_swapped_for_a_link_after_prepare_is_replaced(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    report.prepare(tmp_path / "out")
    os.rmdir(tmp_path / "out" / "feedback")
    os.symlink(outside, tmp_path / "out" / "feedback")
    report.prepare(tmp_path / "out")
    assert (tmp_path / "out" / "feedback").is_dir()
    assert not (tmp_path / "out" / "feedback").is_symlink() and list(outside.iterdir()) == []


# --- kernels that die, and output that never ends --------------------------------------------

def test_stop_survives_a_client_whose_kernel_manager_is_gone():
    run = _execute._Run([], None, 0, {})
    asyncio.run(run._stop())  # never started
    run.client = SimpleNamespace(km=None, kc=None)  # what nbclient leaves after a failed start
    asyncio.run(run._stop())

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("gone")

    run.client, run.km = SimpleNamespace(km=None, kc=Broken()), Broken()
    assert asyncio.run(run._stop()) is None  # every failure is swallowed

    calls = []

    class Manager:  # a kernel manager nbclient has already let go of
        async def shutdown_kernel(self, now=False):
            calls.append(("shutdown", now))

        async def cleanup_resources(self):
            calls.append(("cleanup",))

    run.client, run.km = SimpleNamespace(km=None, kc=None), Manager()
    asyncio.run(run._stop())
    assert calls == [("shutdown", True), ("cleanup",)]  # the kernel is still stopped


def test_a_kernel_that_fails_to_start_is_tried_again_once_then_reported(monkeypatch):
    starts = []

    async def start(self, root, workdir):
        starts.append(workdir)
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(_execute._Run, "_start", start)
    steps = [_execute.Step("code", "x = 1")]
    result = asyncio.run(_execute.run_plan(steps, _execute.Limits(5, 60, 0)))
    assert len(starts) == 2
    assert "did not start" in result.error and "Kernel died" in result.error
    assert [step.status for step in result.steps] == ["not run"]


def stream(text, name="stdout"):
    return {"msg_type": "stream", "parent_header": {"msg_id": "m"}, "header": {"msg_type": "stream"},
            "content": {"name": name, "text": text}}


def sent(payload):
    return {"msg_type": "display_data", "parent_header": {"msg_id": "m"},
            "header": {"msg_type": "display_data"},
            "content": {"data": {_values.MIME: payload}, "metadata": {}}}


def test_printed_output_is_capped_per_cell_and_values_sent_are_kept(monkeypatch):
    monkeypatch.setattr(_execute, "OUTPUT_LIMIT", 100)
    client = _execute._Client(nbformat.v4.new_notebook(), record_timing=False)
    client.clear_before_next_output = False  # set by nbclient when a cell starts
    cell = nbformat.v4.new_code_cell("")
    for _ in range(1000):
        client.process_message(stream("y" * 50), cell, 0)
    client.process_message(sent({"site": "t:0", "got": {"plain": 1}}), cell, 0)
    display = {"msg_type": "display_data", "parent_header": {"msg_id": "m"}, "header": {},
               "content": {"data": {"text/plain": "z" * 1000}, "metadata": {}}}
    display["header"]["msg_type"] = "display_data"
    client.process_message(display, cell, 0)
    with pytest.raises(CellExecutionComplete):
        client.process_message({"msg_type": "status", "parent_header": {"msg_id": "m"},
                                "header": {}, "content": {"execution_state": "idle"}}, cell, 0)
    kept = "".join(output.get("text", "") for output in cell.outputs)
    assert kept.startswith("y" * 100) and len(kept) < 200
    assert re.search(r"output truncated: [\d,]{6} characters dropped", kept)
    assert client.sent == [{"site": "t:0", "got": {"plain": 1}}]  # not an output, not dropped
    client.process_message(stream("y"), nbformat.v4.new_code_cell(""), 1)  # a new cell
    assert client.sent == []


def test_a_step_that_sends_too_many_values_says_so(monkeypatch):
    monkeypatch.setattr(_execute, "MAX_SENDS", 3)
    client = _execute._Client(nbformat.v4.new_notebook(), record_timing=False)
    cell = nbformat.v4.new_code_cell("")
    for n in range(5):
        client.process_message(sent({"site": "t:0", "got": {"plain": n}}), cell, 0)
    assert len(client.sent) == 3 and client.too_many
    monkeypatch.setattr(_execute, "MAX_SENDS", 100)
    monkeypatch.setattr(_execute, "MAX_SENT_CHARS", 10_000)
    client.process_message(sent({"site": "t:0", "got": {"plain": 0}}), cell, 1)  # a new cell
    assert client.sent and not client.too_many
    client.process_message(sent({"site": "t:0", "got": {"plain": "x" * 20_000}}), cell, 1)
    assert len(client.sent) == 1 and client.too_many


def test_huge_error_messages_are_clipped_while_grading(monkeypatch):
    monkeypatch.setattr(_execute, "OUTPUT_LIMIT", 100)
    assert _execute._clip("e" * 100) == "e" * 100
    clipped = _execute._clip("e" * 1000)
    assert clipped == "e" * 100 + "... [truncated: 1,000 characters in all]"
    monkeypatch.setattr(report, "TEXT_LIMIT", 50)  # the report gives the length it had
    assert report.shorten(clipped).endswith("e... [truncated: 1,000 characters in all]")
    assert _execute._clip("e" * 999 + "!", keep_end=True).endswith("e" * 99 + "!")


# --- end to end ---------------------------------------------------------------------------

@pytest.mark.kernel
@pytest.mark.slow
def test_a_submission_that_floods_output_and_forges_markdown_is_graded(tmp_path, monkeypatch):
    monkeypatch.setattr(_execute, "OUTPUT_LIMIT", 10_000)
    solution = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"
    source = markup.notebook([
        markup.code_cell("def check(what, got, expected, hint=''):\n"
                         "    if got != expected:\n"
                         "        raise AssertionError(f'{what}: {got} != {expected}. {hint}')"),
        markup.solution_cell(solution, "ex_f"),
        markup.test_cell("print('.' * 100_000)\ncheck('f(1)', f(1), 1)", "t_pass", 1),
        markup.test_cell("check('f(2)', f(2), 2, hint='fails as it should')", "t_fail", 1),
    ])
    answer = ("def f(x):\n    print('#' * 50_000)\n    return 3 if x == 2 else x\n"
              f"raise ValueError({FORGERY!r} + 'v' * 3_000_000)")
    submission = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        answer, metadata={"nbgrader": {"grade_id": "ex_f", "solution": True}})])
    nbformat.write(source, tmp_path / "source.ipynb")
    nbformat.write(submission, tmp_path / "alice.ipynb")
    gradebook = grade.grade_submissions(tmp_path / "source.ipynb", [tmp_path / "alice.ipynb"],
                                        tmp_path / "out", jobs=1, timeout=30)
    result = gradebook.submissions[0]
    assert [cell.points for cell in result.cells] == [1, 0]  # values sent pass the cap
    text = (tmp_path / "out" / "feedback" / "alice.md").read_text()
    assert "characters in all]" in text and len(text) < 20_000
    outside = markdown_lines(text)
    assert not any(word in line for line in outside for word in ("13/13", "<img", "evil"))
    assert "fails as it should" in text


def test_values_are_sent_as_plain_data_and_judged_by_the_grader():
    import numpy as np

    values = [None, True, 3, 2.5, 1 + 2j, "text", [1, (2.0, "a")], {"k": {3, 4}},
              np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(1.5)]
    for value in values:
        back = _values.decode(json.loads(json.dumps(_values.encode(value))))
        assert type(back) in (type(value), frozenset) or isinstance(back, np.generic)
        assert _values.same(back, value, 0, 0)
    for liar in (type("L", (float,), {})(1.0), np.zeros(2).view(type("A", (np.ndarray,), {})),
                 object(), np.array(["a"]), {1: object()}):
        with pytest.raises(_values.NotPlainData):
            _values.encode(liar)
    record = {"site": "t:0", "kind": "equal", "what": "x", "expected": _values.encode([1.0, 2.0]),
              "rtol": 1e-6, "atol": 0.0, "hint": ""}
    assert _values.judge(record, {"site": "t:0", "got": _values.encode([1.0, 2.0000001])}) == ""
    assert "expected shape (2,), got shape (3,)" in _values.judge(
        record, {"site": "t:0", "got": _values.encode([1.0, 2.0, 3.0])})
    assert "could not be read" in _values.judge(record, {"site": "t:0", "got": {"array": [1]}})
    deep = {"plain": 0}
    for _ in range(100_000):
        deep = {"list": [deep]}
    assert "could not be read" in _values.judge(record, {"site": "t:0", "got": deep})
    assert "order" in _values.judge(record, ["not", "a", "dict"])
    bound = {**record, "kind": "at_least", "expected": _values.encode(0.97)}
    assert _values.judge(bound, {"site": "t:0", "got": _values.encode(0.98)}) == ""
    assert "at least 0.97" in _values.judge(bound, {"site": "t:0", "got": _values.encode(0.5)})
    assert "expected a number" in _values.judge(bound, {"site": "t:0", "got": _values.encode("1")})
    text = {**record, "kind": "contains", "expected": _values.encode(["3", "2"])}
    assert _values.judge(text, {"site": "t:0", "got": _values.encode("lengths 3 and 2")}) == ""
    assert "contains ['2']" in _values.judge(text, {"site": "t:0", "got": _values.encode("3")})
