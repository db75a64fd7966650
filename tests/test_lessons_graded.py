"""``course grade`` on every real lesson: the solution earns full marks, the student notebook
that ``course release`` writes earns nothing, and each written answer waits for manual
grading. This is what proves that every check cell can be judged outside the kernel: the
solution runs in the student's place, with the expected values left out, and the grader
compares what it sends with the reference run."""
from pathlib import Path

import nbformat
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



OWN_NAMES = {  # lesson -> {answer: (what the solution says, what a student writes instead)}
    # lesson 07 forbids the module course.flops: a local variable called flops is not it
    "07_gpu_flops": {"ex_mlp_flops": ("total", "flops")},
    # lesson 09 forbids conv2d_flops and im2col, not every name in course.conv
    "09_convolutions": {
        "ex_conv_flops": ("    return 2 * outputs * C_in * kh * kw + (outputs if bias else 0)",
                          "    flops = 2 * outputs * C_in * kh * kw\n"
                          "    return flops + (outputs if bias else 0)"),
        "ex_im2col": ("    H_out = (H + 2 * pad - kh) // stride + 1\n"
                      "    W_out = (W_in + 2 * pad - kw) // stride + 1\n    x_pad",
                      "    H_out = conv.output_size(H, kh, stride, pad)\n"
                      "    W_out = conv.output_size(W_in, kw, stride, pad)\n    x_pad"),
    },
}


@pytest.mark.parametrize("lesson", sorted(OWN_NAMES))
def test_a_correct_answer_with_its_own_variable_named_like_a_library_module_earns_full_marks(
        lesson, tmp_path):
    source = ROOT / "solutions" / f"{lesson}.ipynb"
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in OWN_NAMES[lesson]:
            old, new = OWN_NAMES[lesson][grade_id]
            assert old in cell.source, grade_id
            cell.source = cell.source.replace(old, new)
    nbformat.write(nb, tmp_path / "own_names.ipynb")
    gradebook = grade.grade_submissions(source, [tmp_path / "own_names.ipynb"], tmp_path / "out",
                                        jobs=1, timeout=600)
    [result] = gradebook.submissions
    assert result.score == gradebook.max_score, [(c.grade_id, c.message) for c in result.cells
                                                 if c.points is not None and not c.passed]
    assert not any("uses course" in note for note in result.notes), result.notes
