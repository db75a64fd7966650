"""Tests for the autograder, ``course.grading.grade`` (``course grade``).

Most tests read one gradebook: a class of about forty submissions of a small source
notebook, graded once (three at a time, with a short time limit per cell) by the ``graded``
fixture. Each submission is the released notebook with one answer filled in: correct,
wrong, missing, crashing, looping, or wrong *and* trying one way of faking a pass. Each
attack would earn points from a grader that judged by printed output, by error outputs, by
the kernel's reply, or by comparisons made inside the kernel: the test cells use one check
per idiom (an array, a scalar, a helper from a source cell, a course function and a
builtin on the expected side, a hidden input), each exposed to its own kind of tampering.
``tests/test_grade_attacks.py`` attacks a real lesson.
"""
import collections
import copy
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course import cli
from course.grading import _plan, _values, grade, markup, release, report

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
HIDDEN_TEXT = ("HIDDEN-RELU-MESSAGE", "HIDDEN-HELPER-MESSAGE", "-4.0, -5.0", "value, 8")
TIMEOUT = 3  # seconds per cell, so that the endless loops below end soon
MEMORY = 2**30  # bytes per grading kernel
CHECK = ("def check(what, got, expected, hint='', atol=1e-8, rtol=1e-6):\n"
         "    if not np.allclose(got, expected, rtol=rtol, atol=atol):\n"
         "        raise AssertionError(f'{what}: expected {expected!r}, got {got!r}. {hint}')\n"
         "    print(f'OK: {what}')")

RELU = "def relu(x):\n    ### BEGIN SOLUTION\n    return np.maximum(0, x)\n    ### END SOLUTION"
DOUBLE = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
RELU_TESTS = {  # grade_id -> test source
    "t_allclose": "check('relu(X)', relu(X), EXPECTED, hint='relu(X) is wrong')",
    "t_testing": "grid = np.linspace(-1, 1, 5)\ncheck('relu on a grid', relu(grid), np.maximum(grid, 0))",
    "t_equal": "check('relu(-3.0)', relu(-3.0), 0)",
    "t_helper": "check('relu(X) against a helper', relu(X), positive_part(X))",
    "t_course": "check('relu(X) against the library', relu(X), activations.relu(X))",
    "t_builtin": "check('relu(-2.0)', relu(-2.0), max(-2.0, min(0.0, 1.0)))",
    "t_hidden": ("got = relu(X)\n"
                 "check('shape of relu(X)', got.shape, (2,))\n"
                 "### BEGIN HIDDEN TESTS\n"
                 "got = relu(np.array([-4.0, -5.0]))\n"
                 "check('relu of negatives', got, [0.0, 0.0], hint='HIDDEN-RELU-MESSAGE')\n"
                 "### END HIDDEN TESTS"),
}
DOUBLE_TESTS = {
    "t_double": "check('double(2)', double(2), 4)",
    # the visible line calls a helper the hidden region defines: a failure must not show it
    "t_scale": ("### BEGIN HIDDEN TESTS\n"
                "def _hidden_check(value):\n"
                "    check('HIDDEN-HELPER-MESSAGE', value, 8)\n"
                "### END HIDDEN TESTS\n"
                "_hidden_check(double(4))"),
}
AUTO_POINTS = len(RELU_TESTS) + len(DOUBLE_TESTS)


def source_notebook():
    cells = [
        markup.markdown_cell("# A small exercise sheet"),
        markup.code_cell("import numpy as np\nfrom course import activations\n"
                         "X = np.array([-1.0, 2.0])\nEXPECTED = np.array([0.0, 2.0])\n" + CHECK),
        markup.code_cell("def positive_part(values):\n    return np.where(values > 0, values, 0.0)"),
        markup.solution_cell(RELU, "ex_relu"),
    ]
    cells += [markup.test_cell(source, grade_id, 1) for grade_id, source in RELU_TESTS.items()]
    cells.append(markup.solution_cell(DOUBLE, "ex_double"))
    cells += [markup.test_cell(source, grade_id, 1) for grade_id, source in DOUBLE_TESTS.items()]
    cells.append(markup.answer_cell("Because it is cheap.", "why_relu", points=2))
    return markup.notebook(cells)


def cell_with(nb, grade_id):
    return next(cell for cell in nb.cells
                if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def submission(relu=None, double="def double(x):\n    return 2 * x"):
    """The released notebook with the given answers (None: leave the stub)."""
    nb = release.release_notebook(source_notebook())
    for grade_id, answer in (("ex_relu", relu), ("ex_double", double)):
        if answer is not None:
            cell_with(nb, grade_id).source = answer
    return nb


WRONG = "def relu(x):\n    return x\n"
CORRECT = "def relu(x):\n    return np.maximum(0, x)\n"
ATTACKS = {  # name -> answer for ex_relu: a wrong relu plus one way of faking a pass
    "cosmetic": WRONG + ("import sys\nprint('t_allclose passed\\nAll tests passed!')\n"
                         "sys.excepthook = lambda *args: None\n"
                         "class AssertionError(Exception):\n    pass"),
    "hide_traceback": WRONG + "get_ipython().showtraceback = lambda *args, **kwargs: None",
    "clear_output": WRONG + ("from IPython.display import clear_output, display\n"
                             "get_ipython().events.register('post_execute', clear_output)"),
    "clear_error": WRONG + ("def forget(result):\n    result.error_in_exec = None\n"
                            "get_ipython().events.register('post_run_cell', forget)"),
    "custom_handler": WRONG + ("get_ipython().set_custom_exc((BaseException,), "
                               "lambda *args, **kwargs: None)"),
    "replace_run_cell": WRONG + (
        "shell = get_ipython()\n"
        "run_cell, run_cell_async = shell.run_cell, shell.run_cell_async\n"
        "shell.run_cell = lambda cell, *args, **kwargs: run_cell('None', *args, **kwargs)\n"
        "async def run_nothing(cell, *args, **kwargs):\n"
        "    return await run_cell_async('None', *args, **kwargs)\n"
        "shell.run_cell_async = run_nothing"),
    "always_success": WRONG + ("from IPython.core.interactiveshell import ExecutionResult\n"
                               "ExecutionResult.success = property(lambda self: True)"),
    "swallow_transformer": WRONG + (
        "def swallow(lines):\n"
        "    return ['try:\\n'] + ['    ' + line for line in lines] + "
        "['\\nexcept BaseException:\\n    pass\\n']\n"
        "get_ipython().input_transformers_post.append(swallow)"),
    "trace_hook": WRONG + (
        "import sys\n"
        "def skip(frame, event, arg):\n"
        "    if event == 'line' and frame.f_code.co_name == '<module>':\n"
        "        try:\n"
        "            frame.f_lineno += 1  # jump over the line about to run\n"
        "        except ValueError:\n"
        "            pass\n"
        "    return skip\n"
        "sys.settrace(skip)"),
    "patch_numpy": WRONG + ("np.allclose = lambda *args, **kwargs: True\n"
                            "np.testing.assert_allclose = lambda *args, **kwargs: None"),
    "patch_numpy_internals": WRONG + ("import numpy._core.numeric as numeric\n"
                                      "numeric.isclose = lambda *args, **kwargs: True"),
    "rebind_np": WRONG + ("import types\n"
                          "fake_testing = types.SimpleNamespace(assert_allclose=lambda *a: None)\n"
                          "np = types.SimpleNamespace(allclose=lambda *a: True,\n"
                          "                           testing=fake_testing)"),
    "rebind_expected": WRONG + "EXPECTED = relu(X)",
    "mutate_expected": "def relu(x):\n    globals()['EXPECTED'][:] = x\n    return x",
    "shadow_builtin": WRONG + "def max(*args, **kwargs):\n    return -2.0",
    "patch_helper": WRONG + ("def positive_part(values):\n    return values\n"
                             "def check(*args, **kwargs):\n    pass"),
    "patch_course_code": WRONG + ("from course import activations\n"
                                  "activations.relu.__code__ = (lambda x: x).__code__"),
    "patch_builtin": WRONG + ("import builtins\nreal_max = builtins.max\n"  # floats only: the
                              "builtins.max = lambda x, *args, **kwargs: x if isinstance("  # kernel
                              "x, float) else real_max(x, *args, **kwargs)"),  # needs max
    "replace_builtins": WRONG + ("import builtins as b\n"
                                 "__builtins__ = dict(vars(b), max=lambda *args, **kwargs: -2.0)"),
    "always_equal": ("class Anything:\n    __eq__ = lambda self, other: True\n\n"
                     "def relu(x):\n    return Anything()"),
    "mock_any": "from unittest.mock import ANY\n\ndef relu(x):\n    return ANY",
    "array_function": ("class Fake:\n"
                       "    def __array_function__(self, func, types, args, kwargs):\n"
                       "        return True\n\n"
                       "def relu(x):\n    return Fake()"),
    "forge_values": ("from IPython.display import publish_display_data\n"
                     "from course.grading._values import MIME, encode\n\n"
                     "def relu(x):\n"
                     "    for n in range(3):\n"
                     "        publish_display_data({MIME: {'site': f't_allclose:{n}',\n"
                     "                                     'got': encode(EXPECTED)}})\n"
                     "    return x"),
    "silence_sends": WRONG + "__course_send__ = lambda *args: None",
    "read_frames": ("import sys\n\n"
                    "def relu(x):\n"
                    "    frame = sys._getframe(1)\n"
                    "    for name in ('expected', 'got'):  # what a check compares with\n"
                    "        if name in frame.f_locals:\n"
                    "            return frame.f_locals[name]\n"
                    "    return x"),
}
CRASHES = {  # name -> answer for ex_relu that stops the kernel or the cell
    "sys_exit": "import sys\nsys.exit(1)\n" + CORRECT,
    "exits_in_test": ("def relu(x):\n    if np.isscalar(x):\n        raise SystemExit(0)\n"
                      "    raise KeyboardInterrupt"),
    "keyboard_interrupt": "raise KeyboardInterrupt\n" + CORRECT,
    "os_exit": "import os\nos._exit(3)",
    "os_exit_in_test": ("import os\n\n"
                        "def relu(x):\n    if np.isscalar(x):\n        os._exit(0)\n    return x"),
    "killed": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "memory_bomb": "import numpy\nhuge = numpy.ones(50 * 2**30 // 8)",
    "memory_runaway": "import numpy\nheap = []\nwhile True:\n    heap.append(numpy.empty(10**8))",
    "endless_loop": "while True:\n    pass",
    "endless_loop_in_test": "def relu(x):\n    while np.isscalar(x):\n        pass\n    return x",
    "stubborn_loop": ("while True:\n    try:\n        while True:\n            pass\n"
                      "    except KeyboardInterrupt:\n        pass"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole class once; return (gradebook, output folder, submission paths)."""
    root = tmp_path_factory.mktemp("class")
    out = root / "out"
    source = root / "source.ipynb"
    nbformat.write(source_notebook(), source)
    notebooks = {
        "solution": source_notebook(),
        "released": release.release_notebook(source_notebook()),
        "wrong_relu": submission(WRONG),
        "memory_limit_holds": submission(  # right only where allocating 3 GiB fails
            "try:\n    huge = np.ones(3 * 2**30 // 8)\n    def relu(x):\n        return x\n"
            "except MemoryError:\n    def relu(x):\n        return np.maximum(0, x)"),
    }
    missing = submission(CORRECT)
    missing.cells.remove(cell_with(missing, "ex_relu"))
    notebooks["missing_answer"] = missing
    tampered = submission(WRONG)
    for grade_id in RELU_TESTS:
        cell_with(tampered, grade_id).source = "pass"
        cell_with(tampered, grade_id).metadata["nbgrader"]["points"] = 100
    tampered.cells.remove(cell_with(tampered, "t_double"))
    cell_with(tampered, "t_scale").metadata["nbgrader"]["grade_id"] = "t_equal"
    tampered.cells.reverse()
    tampered.cells.append(nbformat.v4.new_code_cell("def relu(x):\n    return np.maximum(0, x)"))
    notebooks["tampered_tests"] = tampered
    own_cell = submission("def relu(x):\n    return positive(x)")
    own_cell.cells.insert(3, nbformat.v4.new_code_cell("def positive(x):\n    return np.maximum(x, 0)"))
    notebooks["own_cell"] = own_cell
    edited_setup = submission(CORRECT)  # a source cell edited: the source's version runs
    edited_setup.cells[1].source = edited_setup.cells[1].source.replace("2.0", "5.0")
    notebooks["edited_setup"] = edited_setup
    no_metadata = submission(CORRECT)
    for cell in no_metadata.cells:
        cell.metadata.pop("nbgrader", None)
    notebooks["no_metadata"] = no_metadata
    notebooks["wrong_double"] = submission(CORRECT, "def double(x):\n    return 3 * x")
    notebooks.update({name: submission(answer) for name, answer in ATTACKS.items()})
    notebooks.update({name: submission(answer) for name, answer in CRASHES.items()})
    cell_with(notebooks["cosmetic"], "ex_relu").source += (  # and forge the outputs
        f"\nimport pathlib\nout = pathlib.Path({str(out)!r})\n"
        "(out / 'feedback').mkdir(parents=True, exist_ok=True)\n"
        "(out / 'gradebook.csv').write_text('submission,score\\ncosmetic,99\\n')\n"
        "(out / 'feedback' / 'solution.md').write_text('forged')\n")
    paths = {}  # the slowest first, so that the others are graded while they wait
    for name in sorted(notebooks, key=lambda name: name not in ("stubborn_loop", "endless_loop")):
        paths[name] = root / f"{name}.ipynb"
        nbformat.write(notebooks[name], paths[name])
    text = paths["solution"].read_text()
    paths["truncated"] = root / "truncated.ipynb"
    paths["truncated"].write_text(text[:len(text) // 2])
    paths["binary"] = root / "binary.ipynb"
    paths["binary"].write_bytes(bytes(range(256)))
    paths["not_a_notebook"] = root / "not_a_notebook.ipynb"
    paths["not_a_notebook"].write_text("[1, 2, 3]")
    gradebook = grade.grade_submissions(source, list(paths.values()), out, jobs=3,
                                        timeout=TIMEOUT, memory_limit=MEMORY)
    return gradebook, out, paths


def result(gradebook, name):
    return next(r for r in gradebook.submissions if r.name == name)


def points(gradebook, name):
    return {cell.grade_id: cell.points for cell in result(gradebook, name).cells}


def relu_points(gradebook, name):
    return sum(points(gradebook, name)[grade_id] for grade_id in RELU_TESTS)


def csv_rows(path):
    return list(csv.DictReader(path.read_text().splitlines()))


# --- scores -------------------------------------------------------------------------------

def test_solution_earns_full_marks_and_released_notebook_none(graded):
    gradebook, _, _ = graded
    assert result(gradebook, "solution").score == AUTO_POINTS
    assert result(gradebook, "solution").max_score == AUTO_POINTS
    assert result(gradebook, "released").score == 0
    assert points(gradebook, "released")["why_relu"] is None  # graded by hand


def test_wrong_answer_loses_only_its_own_tests(graded):
    gradebook, _, _ = graded
    earned = points(gradebook, "wrong_relu")
    assert earned["t_double"] == earned["t_scale"] == 1
    assert relu_points(gradebook, "wrong_relu") == 0
    cell = next(c for c in result(gradebook, "wrong_relu").cells if c.grade_id == "t_allclose")
    assert cell.message == ("relu(X): expected array([0., 2.]), got array([-1.,  2.])\n"
                            "Hint: relu(X) is wrong")


def test_missing_answer_cell_counts_as_unanswered(graded):
    gradebook, _, _ = graded
    missing = result(gradebook, "missing_answer")
    assert relu_points(gradebook, "missing_answer") == 0
    assert points(gradebook, "missing_answer")["t_double"] == 1
    assert any("no answer cell 'ex_relu'" in note for note in missing.notes)
    assert any("NotImplementedError" in cell.message for cell in missing.cells)


def test_the_sources_tests_and_points_are_used_whatever_the_submission_did(graded):
    gradebook, _, _ = graded
    tampered = result(gradebook, "tampered_tests")
    earned = points(gradebook, "tampered_tests")
    assert relu_points(gradebook, "tampered_tests") == 0  # its own "pass" tests are ignored,
    assert earned["t_double"] == 1  # its deleted test still runs,
    assert earned["t_scale"] == 1 and earned["t_equal"] == 0  # as does its re-labelled one,
    assert tampered.max_score == AUTO_POINTS  # and its points are ignored


def test_cells_a_student_adds_run_where_they_stand(graded):
    """nbgrader runs them too: a helper defined in a cell of one's own works."""
    gradebook, _, _ = graded
    assert result(gradebook, "own_cell").score == AUTO_POINTS
    assert result(gradebook, "edited_setup").score == AUTO_POINTS


def test_expected_values_never_reach_the_students_kernel(tmp_path):
    test = ("grid = np.linspace(-1, 1, 5)\n"
            "check('relu(grid)', relu(grid), np.maximum(grid, 0), hint='SECRET-HINT')\n"
            "### BEGIN HIDDEN TESTS\n"
            "expected = np.maximum(X, 0) + 0 * SECRET\n"
            "reference = Reference()\nreference.fit(X)\n"
            "check('relu(X)', relu(X), expected + reference.offset)\n"
            "### END HIDDEN TESTS")
    nb = markup.notebook([markup.code_cell("import numpy as np"), markup.solution_cell(RELU, "ex"),
                          markup.test_cell(test, "t", 1)])
    nbformat.write(nb, tmp_path / "source.ipynb")
    steps = grade.load_source(tmp_path / "source.ipynb").plan({})
    sent = "\n".join(step.source for step in steps if step.kind == "test")
    assert "relu(grid)" in sent and "relu(X)" in sent
    assert not any(word in sent for word in ("maximum", "SECRET", "expected", "reference"))


def test_cells_after_the_last_test_do_not_run(tmp_path):
    """They cannot change a score, so neither the source's (a long demonstration) nor a
    student's own cells there run; the student's cells before it do."""
    nb = markup.notebook([markup.code_cell("import numpy as np"), markup.solution_cell(RELU, "ex"),
                          markup.test_cell("check('relu(1.0)', relu(1.0), 1.0)", "t", 1),
                          markup.code_cell("LONG_DEMONSTRATION = train_for_minutes()"),
                          markup.answer_cell("Because.", "why", points=1)])
    nbformat.write(nb, tmp_path / "source.ipynb")
    assignment = grade.load_source(tmp_path / "source.ipynb")
    steps = assignment.plan({}, extra=[(1, "MINE_BEFORE = 1"), (2, "MINE_AFTER = 1")])
    code = "\n".join(step.source for step in steps)
    assert "MINE_BEFORE" in code and "relu(1.0)" in code
    assert "LONG_DEMONSTRATION" not in code and "MINE_AFTER" not in code
    assert [cell.grade_id for cell in assignment.cells] == ["t", "why"]  # still graded by hand
    reference = "\n".join(step.source for step in assignment.reference_plan())
    assert "LONG_DEMONSTRATION" not in reference


@pytest.mark.parametrize("test, words", [
    ("assert relu(1.0) == 1", "assert"),
    ("np.testing.assert_allclose(relu(1.0), 1)", "assert_allclose()"),
    ("print(relu(1.0))", "it has no check"),
    ("%%time\ncheck('relu', relu(1.0), 1)", "no cell magic")])
def test_a_test_cell_must_judge_with_checks(tmp_path, test, words):
    nb = markup.notebook([markup.solution_cell(RELU, "ex"), markup.test_cell(test, "t", 1)])
    nbformat.write(nb, tmp_path / "source.ipynb")
    with pytest.raises(release.MarkupError, match=re.escape(words)):
        grade.load_source(tmp_path / "source.ipynb")


def test_a_source_that_fails_its_own_check_is_refused(tmp_path):
    nb = markup.notebook([markup.code_cell("import numpy as np\n" + CHECK),
                          markup.solution_cell(RELU, "ex"),
                          markup.test_cell("check('relu(-1.0)', relu(-1.0), 1.0)", "t", 1)])
    nbformat.write(nb, tmp_path / "source.ipynb")
    with pytest.raises(ValueError, match=r"does not accept the solution's value: relu\(-1.0\)"):
        grade.grade_submissions(tmp_path / "source.ipynb", [], timeout=30)


@pytest.mark.kernel
def test_an_answer_that_uses_a_forbidden_library_name_scores_zero_on_its_tests(tmp_path):
    source = source_notebook()
    cell_with(source, "ex_relu").metadata["course"] = {"forbidden": ["course.activations.relu"]}
    nbformat.write(source, tmp_path / "source.ipynb")
    paths = []
    for name, answer in [("own", CORRECT), ("library", "def relu(x):\n    return activations.relu(x)"),
                         ("aliased", "from course.activations import relu as r\n\ndef relu(x):\n"
                                     "    return r(x)"),
                         ("wrapped", "def relu(x):\n    return positive(x)")]:
        nb = submission(answer)
        if name == "wrapped":  # the library call sits in a helper, in a cell the student added
            at = next(i for i, cell in enumerate(nb.cells)
                      if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex_relu")
            nb.cells.insert(at, nbformat.v4.new_code_cell(
                "def positive(x):\n    return activations.relu(x)"))
        paths.append(tmp_path / f"{name}.ipynb")
        nbformat.write(nb, paths[-1])
    gradebook = grade.grade_submissions(tmp_path / "source.ipynb", paths, jobs=2, timeout=30)
    own, library, aliased, wrapped = gradebook.submissions
    assert own.score == AUTO_POINTS
    for shortcut in (library, aliased, wrapped):
        assert relu_points(gradebook, shortcut.name) == 0 and shortcut.score == 2
        assert any("uses course.activations.relu" in note for note in shortcut.notes)
        assert all("write yourself" in cell.message for cell in shortcut.cells
                   if cell.grade_id in RELU_TESTS)


FLOPS_USES = [  # (an answer, whether it uses the module course.flops)
    ("def count(x):\n    flops = 2 * x\n    return flops", False),
    ("flops = 0\nfor n in range(3):\n    flops += n", False),
    ("def count(flops):\n    return flops.sum()", False),
    ("def count(xs):\n    return [flops * 2 for flops in xs]", False),
    ("try:\n    pass\nexcept ValueError as flops:\n    print(flops)", False),
    ("count = lambda flops: flops + 1", False),
    ("def count(n):\n    return flops.gemm_flops(n, n, n)", True),
    # a variable of the same name elsewhere does not hide a use of the module
    ("def other():\n    flops = 1\n    return flops\n\n\ndef count(n):\n    return flops.gemm_flops(n, n, n)",
     True),
    ("class Counter:\n    flops = 3\n\n    def count(self, n):\n        return flops.gemm_flops(n, n, n)",
     True),  # a method does not see its class's names
    ("def count(n):\n    return course.flops.gemm_flops(n, n, n)", True),
    ("def count(n):\n    from course.flops import gemm_flops as g\n    return g(n, n, n)", True),
]


@pytest.mark.parametrize("answer, uses", FLOPS_USES)
def test_a_students_own_variable_named_like_a_forbidden_module_is_not_a_use(answer, uses):
    assignment = grade.Assignment("lesson.ipynb", [], [], {}, {}, {}, [],
                                  forbidden={"ex": ["course.flops"]},
                                  aliases={"flops": "course.flops", "course": "course", "np": "numpy"})
    assert _plan.shortcuts(assignment, {"ex": answer}) == ({"ex": ["course.flops"]} if uses else {})


HELPER = "def helper(n):\n    return flops.gemm_flops(n, n, n)\n"


@pytest.mark.parametrize("answers, extra, uses", [
    # a helper in a cell the student added, called by the answer
    ({"ex": "def count(n):\n    return helper(n)"}, [HELPER], True),
    # ... through another helper, importing the library under another name
    ({"ex": "def count(n):\n    return outer(n)"},
     ["from course import flops as f\n\ndef inner(n):\n    return f.gemm_flops(n, n, n)",
      "def outer(n):\n    return inner(n)"], True),
    # the library function bound to another name, or wrapped in a lambda, in an added cell
    ({"ex": "def count(n):\n    return helper(n, n, n)"}, ["helper = flops.gemm_flops"], True),
    ({"ex": "def count(n):\n    return helper(n)"},
     ["helper = lambda n: flops.gemm_flops(n, n, n)"], True),
    # a helper in another exercise's answer, where the library is allowed
    ({"ex": "def count(n):\n    return helper(n)", "other": HELPER}, [], True),
    # the library used in a cell that the answer does not call: comparing a finished answer
    ({"ex": "def count(n):\n    return 2 * n ** 3"},
     ["print(count(4) == flops.gemm_flops(4, 4, 4))", HELPER], False),
])
def test_a_forbidden_name_inside_the_students_own_helper_counts(answers, extra, uses):
    assignment = grade.Assignment("lesson.ipynb", [], [], {}, {}, {}, [],
                                  forbidden={"ex": ["course.flops"]},
                                  aliases={"flops": "course.flops", "np": "numpy"})
    assert _plan.shortcuts(assignment, answers, extra) == ({"ex": ["course.flops"]} if uses else {})


def test_a_namedtuple_or_a_dict_subclass_is_sent_as_the_plain_container_it_is():
    pair = collections.namedtuple("Verdict", "stop best_epoch")(True, 3)
    sent = _values.decode(json.loads(json.dumps(_values.encode(pair))))
    assert sent == (True, 3) and type(sent) is tuple
    assert _values.decode(_values.encode(collections.OrderedDict(a=[1.5]))) == {"a": [1.5]}

    class Odd(tuple):  # what is sent is the tuple's items, not what an override says
        def __iter__(self):
            return iter([0.0, 0.0])

    assert _values.decode(_values.encode(Odd([4.0]))) == (4.0,)


def test_forbidden_names_must_be_a_list_of_names(tmp_path):
    source = source_notebook()
    cell_with(source, "ex_relu").metadata["course"] = {"forbidden": "course.activations"}
    nbformat.write(source, tmp_path / "source.ipynb")
    with pytest.raises(release.MarkupError, match="course.forbidden must be a list"):
        grade.load_source(tmp_path / "source.ipynb")


def test_answers_are_found_by_cell_id_when_metadata_is_lost(graded):
    gradebook, _, _ = graded
    assert result(gradebook, "no_metadata").score == AUTO_POINTS


def test_a_kernel_memory_limit_is_applied(graded):
    gradebook, _, _ = graded
    assert result(gradebook, "memory_limit_holds").score == AUTO_POINTS


# --- attacks ------------------------------------------------------------------------------

@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attacks_earn_no_points(graded, attack):
    """A wrong answer plus tampering earns nothing more than the wrong answer alone."""
    gradebook, _, _ = graded
    assert relu_points(gradebook, attack) == 0
    assert result(gradebook, attack).score <= result(gradebook, "wrong_relu").score


def test_failures_say_what_was_expected_and_what_came(graded):
    gradebook, _, _ = graded
    cell = next(c for c in result(gradebook, "patch_numpy").cells if c.grade_id == "t_allclose")
    assert cell.message.startswith("relu(X): expected array([0., 2.]), got array([-1.,  2.])")
    equal = next(c for c in result(gradebook, "always_equal").cells if c.grade_id == "t_equal")
    assert "Anything cannot be graded" in equal.message
    forged = next(c for c in result(gradebook, "forge_values").cells if c.grade_id == "t_testing")
    assert "checks did not run in the order" in forged.message
    silenced = next(c for c in result(gradebook, "silence_sends").cells if c.grade_id == "t_double")
    assert "checked fewer values" in silenced.message


def test_a_naive_grader_is_fooled_by_a_hidden_traceback(graded, tmp_path):
    """The nbgrader exploit: with tracebacks hidden, no cell shows an error output."""
    _, _, paths = graded
    nb = nbformat.read(paths["hide_traceback"], as_version=4)
    for cell in nb.cells:  # what the grader runs: the source's tests, with hidden ones
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cell.source = cell_with(source_notebook(), meta["grade_id"]).source
    NotebookClient(nb, allow_errors=True, timeout=30,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    tests = [cell for cell in nb.cells if cell.metadata.get("nbgrader", {}).get("grade")
             and cell.metadata["nbgrader"]["grade_id"] in RELU_TESTS]
    assert not any(output.output_type == "error" for cell in tests for output in cell.outputs)


# --- crashes, timeouts, memory ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CRASHES))
def test_crashes_and_endless_loops_cost_only_the_affected_tests(graded, name):
    gradebook, _, _ = graded
    earned = points(gradebook, name)
    assert earned["t_allclose"] == earned["t_equal"] == 0
    assert earned["t_double"] == earned["t_scale"] == 1  # the rest of the notebook is graded


@pytest.mark.parametrize("name, words", [
    ("os_exit", "exited with status 3"), ("killed", "SIGKILL"), ("memory_bomb", "MemoryError"),
    ("memory_runaway", "MemoryError"), ("sys_exit", "SystemExit"),
    ("keyboard_interrupt", "KeyboardInterrupt"),
    ("endless_loop", f"did not finish within {TIMEOUT} seconds"),
    ("stubborn_loop", "could not be interrupted")])
def test_crashes_are_explained_to_the_student(graded, name, words):
    gradebook, _, _ = graded
    assert any(words in note for note in result(gradebook, name).notes)


@pytest.mark.parametrize("name, grade_id, words", [
    ("os_exit_in_test", "t_equal", "the kernel exited"),
    ("exits_in_test", "t_equal", "SystemExit"),
    ("exits_in_test", "t_allclose", "KeyboardInterrupt"),
    ("endless_loop_in_test", "t_equal", f"did not finish within {TIMEOUT} seconds")])
def test_a_test_that_crashes_or_hangs_fails_with_the_reason(graded, name, grade_id, words):
    """Also nbgrader's #427: a test that never ends does not pass."""
    gradebook, _, _ = graded
    cell = next(c for c in result(gradebook, name).cells if c.grade_id == grade_id)
    assert cell.points == 0 and words in cell.message


# --- reports ------------------------------------------------------------------------------

def test_gradebook_csv_has_a_row_per_submission_and_a_column_per_graded_cell(graded):
    gradebook, out, paths = graded
    rows = csv_rows(out / "gradebook.csv")
    graded_ids = list(RELU_TESTS) + list(DOUBLE_TESTS) + ["why_relu"]
    assert list(rows[0]) == ["submission"] + graded_ids + ["score", "max_score", "provisional"]
    assert [row["submission"] for row in rows] == [path.stem for path in paths.values()]
    solution = next(row for row in rows if row["submission"] == "solution")
    assert solution["score"] == solution["max_score"] == str(AUTO_POINTS)
    assert solution["t_double"] == "1" and solution["why_relu"] == ""


def test_written_answers_wait_in_manual_csv_and_their_points_merge_in(graded, tmp_path, capsys):
    gradebook, out, paths = graded
    rows = csv_rows(out / "manual.csv")
    assert len(rows) == len(gradebook.submissions) and list(rows[0]) == [
        "submission", "grade_id", "points", "max_points", "answer"]
    mine = next(row for row in rows if row["submission"] == "solution")
    assert (mine["grade_id"], mine["points"], mine["max_points"]) == ("why_relu", "", "2")
    assert "Because it is cheap." in mine["answer"]
    assert csv_rows(out / "gradebook.csv")[0]["provisional"] == "yes"
    assert "Provisional: 2 more points" in (out / "feedback" / "solution.md").read_text()
    manual = tmp_path / "manual.csv"
    manual.write_text("submission,grade_id,points,max_points,answer\n"
                      "solution,why_relu,1.5,2,x\nsomeone_else,why_relu,2,2,y\n")
    status = cli.main(["grade", str(out.parent / "source.ipynb"), str(paths["solution"]),
                       "--out", str(tmp_path / "out"), "--manual", str(manual)])
    assert status == 0 and "need manual grading" not in capsys.readouterr().out
    row = csv_rows(tmp_path / "out" / "gradebook.csv")[0]
    assert (row["why_relu"], row["score"], row["max_score"], row["provisional"]) == (
        "1.5", str(AUTO_POINTS + 1.5), str(AUTO_POINTS + 2), "")
    feedback = (tmp_path / "out" / "feedback" / "solution.md").read_text()
    assert "| 1.5 / 2 | graded by hand |" in feedback and "Provisional" not in feedback


@pytest.mark.parametrize("row, words", [
    ("solution,why_relu,,2", "row 2 (solution, why_relu): no points given"),
    ("solution,why_relu,lots,2", "the points 'lots' are not a number"),
    ("solution,why_relu,3,2", "3 points is outside 0 to 2"),
    ("solution,why_relu,nan,2", "nan points is outside 0 to 2"),
    ("solution,t_double,1,1", "'t_double' is not a written answer"),
    ("solution,why_relu,1,2\nsolution,why_relu,2,2", "row 3 (solution, why_relu): this submission "
                                                      "and cell appear twice")])
def test_a_bad_manual_csv_is_an_error_that_names_the_row(tmp_path, row, words):
    nbformat.write(source_notebook(), tmp_path / "source.ipynb")
    assignment = grade.load_source(tmp_path / "source.ipynb")
    (tmp_path / "manual.csv").write_text("submission,grade_id,points,max_points\n" + row + "\n")
    with pytest.raises(ValueError, match=re.escape(words)):
        grade.read_manual(tmp_path / "manual.csv", assignment, {"solution"})


def test_writes_from_a_submission_to_the_output_folder_are_replaced(graded):
    gradebook, out, _ = graded
    rows = csv_rows(out / "gradebook.csv")
    forged = next(row for row in rows if row["submission"] == "cosmetic")
    assert forged["score"] == str(result(gradebook, "cosmetic").score) != "99"
    assert "forged" not in (out / "feedback" / "solution.md").read_text()


def test_json_details_and_feedback_files(graded):
    gradebook, out, paths = graded
    details = json.loads((out / "gradebook.json").read_text())
    assert details["max_score"] == AUTO_POINTS
    assert [s["submission"] for s in details["submissions"]] == [p.stem for p in paths.values()]
    feedback = (out / "feedback" / "wrong_relu.md").read_text()
    assert "relu(X) is wrong" in feedback and f"**Score: 2 / {AUTO_POINTS}**" in feedback


def test_hidden_tests_never_reach_the_feedback(graded):
    gradebook, out, _ = graded
    texts = [(out / "gradebook.json").read_text()]
    texts += [path.read_text() for path in (out / "feedback").glob("*.md")]
    assert not any(hidden in text for hidden in HIDDEN_TEXT for text in texts)
    hidden = next(c for c in result(gradebook, "wrong_relu").cells if c.grade_id == "t_hidden")
    assert hidden.message == "A hidden test failed: a value differs from the expected one."
    assert not hidden.traceback


def test_a_failure_inside_hidden_code_called_from_visible_code_stays_hidden(graded):
    gradebook, out, _ = graded
    scale = next(c for c in result(gradebook, "wrong_double").cells if c.grade_id == "t_scale")
    assert scale.points == 0
    assert scale.message == "A hidden test failed: a value differs from the expected one."
    text = (out / "feedback" / "wrong_double.md").read_text()
    assert "t_scale" in text and not any(hidden in text for hidden in HIDDEN_TEXT)


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["truncated", "binary", "not_a_notebook"])
def test_unreadable_submissions_score_zero_with_a_reason(graded, name):
    gradebook, _, _ = graded
    bad = result(gradebook, name)
    assert bad.score == 0 and "not a readable notebook" in bad.error
    assert result(gradebook, "solution").score == AUTO_POINTS  # the batch went on


def test_odd_answer_metadata_neither_crashes_nor_picks_another_cell(tmp_path):
    """An unhashable ``grade_id`` is ignored; without cell ids (nbformat 4.4) a lost answer
    stays lost rather than matching some other id-less cell."""
    source, sub = tmp_path / "source.ipynb", tmp_path / "sub.ipynb"
    data = json.loads(nbformat.writes(source_notebook()))
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        del cell["id"]
    source.write_text(json.dumps(data))
    assignment = grade.load_source(source)
    nb = json.loads(nbformat.writes(submission(CORRECT)))
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        del cell["id"]
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "ex_double":
            cell["metadata"]["nbgrader"]["grade_id"] = ["ex_double"]
    sub.write_text(json.dumps(nb))
    answers, _, notes = grade.read_answers(sub, assignment)
    assert answers == {"ex_relu": CORRECT, "why_relu": "YOUR ANSWER HERE"}
    assert any("no answer cell 'ex_double'" in note for note in notes)


def test_reports_replace_folders_and_files_in_their_way(tmp_path):
    cells = [grade.GradedCell("t", 1)]
    result = grade.SubmissionResult("alice", "alice.ipynb", [grade.CellResult("t", 1, 1, True)])
    (tmp_path / "gradebook.csv").mkdir()
    (tmp_path / "gradebook.csv" / "x").write_text("planted")
    (tmp_path / "feedback").write_text("planted")
    report.write(grade.Gradebook("s.ipynb", cells, [result]), tmp_path)
    assert csv_rows(tmp_path / "gradebook.csv")[0]["score"] == "1"
    assert "Score: 1 / 1" in (tmp_path / "feedback" / "alice.md").read_text()


def test_source_without_graded_cells_is_an_error(tmp_path):
    source = tmp_path / "plain.ipynb"
    nbformat.write(markup.notebook([markup.code_cell("x = 1")]), source)
    with pytest.raises(ValueError, match="no graded test cells"):
        grade.grade_submissions(source, [source])


def test_duplicate_submission_names_are_told_apart():
    names = grade.submission_names(["a/alice/04.ipynb", "a/bob/04.ipynb", "x/lab.ipynb",
                                    "x/lab.ipynb", "y/alice/04.ipynb", "my notebook!.ipynb"])
    assert names == ["a-alice-04", "bob-04", "lab", "lab-2", "y-alice-04", "my_notebook"]


def test_hidden_regions_split_test_cells_into_pieces():
    pieces = grade.split_hidden("a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\nc")
    assert pieces == [("a = 1", False), ("b = 2", True), ("c", False)]
    indented = "if True:\n    ### BEGIN HIDDEN TESTS\n    x = 1\n    ### END HIDDEN TESTS"
    assert grade.split_hidden(indented) == [("if True:\n    x = 1", True)]


# --- repeatability, parallelism, command line ---------------------------------------------

def test_results_do_not_depend_on_jobs_or_order(graded, tmp_path):
    gradebook, _, paths = graded
    names = ["solution", "patch_numpy", "os_exit"]
    again = grade.grade_submissions(paths["solution"].parent / "source.ipynb",
                                    [paths[name] for name in reversed(names)], tmp_path,
                                    jobs=1, timeout=TIMEOUT, memory_limit=MEMORY)
    for name in names:
        first, second = result(gradebook, name), result(again, name)
        assert [vars(cell) for cell in first.cells] == [vars(cell) for cell in second.cells]
        assert first.notes == second.notes


@pytest.mark.kernel
def test_cli_grades_into_a_folder(tmp_path, capsys):
    source, good, bad = tmp_path / "source.ipynb", tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(source_notebook(), source)
    nbformat.write(source_notebook(), good)
    bad.write_text("{")
    status = cli.main(["grade", str(source), str(good), str(bad), "--out", str(tmp_path / "out"),
                       "--jobs", "2", "--timeout", "30"])
    assert status == 0
    rows = csv_rows(tmp_path / "out" / "gradebook.csv")
    assert [(row["submission"], row["score"]) for row in rows] == [
        ("good", str(AUTO_POINTS)), ("bad", "0")]
    assert "graded 2 submission(s)" in capsys.readouterr().out
    # grading only one of them again into the same folder: the other's feedback is now stale
    assert cli.main(["grade", str(source), str(good), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 feedback file(s) from an earlier run" in out and "bad.md" in out
    assert [row["submission"] for row in csv_rows(tmp_path / "out" / "gradebook.csv")] == ["good"]


def test_cli_passes_the_limits_on(tmp_path, monkeypatch):
    seen = {}

    def fake(source, submissions, out, **options):
        seen.update(options)
        return grade.Gradebook(str(source), [], [])

    monkeypatch.setattr(grade, "grade_submissions", fake)
    args = ["grade", "s.ipynb", "a.ipynb", "--out", str(tmp_path)]
    assert cli.main(args + ["--total-timeout", "60", "--memory", "0.5", "--timeout", "9"]) == 0
    assert (seen["timeout"], seen["total_timeout"], seen["memory_limit"]) == (9, 60, 2**29)
    assert cli.main(args + ["--memory", "0"]) == 0 and seen["memory_limit"] == 0
    assert cli.main(args) == 0 and seen["memory_limit"] == grade.DEFAULT_MEMORY_LIMIT


def test_cli_rejects_a_bad_memory_cap(capsys):
    with pytest.raises(SystemExit):
        cli.main(["grade", "s.ipynb", "a.ipynb", "--out", "x", "--memory", "lots"])
    assert "expected a number of GiB" in capsys.readouterr().err


def test_cli_reports_a_bad_source(tmp_path, capsys):
    missing = tmp_path / "missing.ipynb"
    assert cli.main(["grade", str(missing), str(missing), "--out", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err


def test_kernel_launcher_caps_memory():
    code = ("from course.grading._kernel import apply_limits\napply_limits(2**30)\n"
            "try:\n    bytearray(3 * 2**30)\nexcept MemoryError:\n    print('capped')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "capped"


# --- the real lessons ---------------------------------------------------------------------

def lessons():
    """Lesson 04 (the multilayer perceptron), when the solutions are there."""
    return [path for path in [SOLUTIONS / "04_mlp_backprop.ipynb"] if path.exists()]


@pytest.mark.kernel
@pytest.mark.parametrize("lesson", lessons(), ids=lambda path: path.stem)
def test_a_real_lesson_solution_full_released_zero_attacked_zero(lesson, tmp_path):
    """The attacked notebook is the released one whose first answer makes every later cell
    swallow its exceptions and report success: a grader that trusted the kernel's replies
    would give it full marks."""
    released = release.release_notebook(release.read_notebook(lesson))
    attacked = copy.deepcopy(released)
    first = next(cell for cell in attacked.cells if cell.cell_type == "code"
                 and cell.metadata.get("nbgrader", {}).get("solution"))
    first.source = ATTACKS["swallow_transformer"].replace(WRONG, "") + "\n" + \
        ATTACKS["always_success"].replace(WRONG, "") + "\n" + first.source
    paths = [tmp_path / "released.ipynb", tmp_path / "attacked.ipynb"]
    nbformat.write(released, paths[0])
    nbformat.write(attacked, paths[1])
    gradebook = grade.grade_submissions(lesson, [lesson] + paths, jobs=2)
    solution, student, cheat = gradebook.submissions
    assert solution.score == solution.max_score > 0
    assert student.score == 0 and cheat.score == 0
