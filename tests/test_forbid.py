"""The ``names_used`` and ``forbid`` helpers that every lesson's setup cell defines.

A check cell calls ``forbid(answer, "losses", ...)`` to tell a student at once that an answer
uses the library function the exercise asks for. It must catch the library (``np.dot``,
``losses.softmax_cross_entropy``, an import inside the function) and must never catch the
student's own names: an attribute ``self.losses`` or a local variable would otherwise cost a
correct answer the points of its check cell.
"""
import ast
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course import losses

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
NOTEBOOKS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


def helpers(path):
    """The source of ``names_used`` and ``forbid`` as the notebook's setup cell defines them."""
    cells = [cell.source for cell in nbformat.read(path, as_version=4).cells
             if cell.cell_type == "code" and "def names_used" in cell.source]
    assert len(cells) == 1, f"{path.name}: no single cell defines names_used"
    tree = ast.parse(cells[0].replace("%matplotlib inline", ""))
    wanted = [node for node in tree.body
              if isinstance(node, ast.FunctionDef) and node.name in ("names_used", "forbid")]
    assert [node.name for node in wanted] == ["names_used", "forbid"], path.name
    return "import dis\n\n" + "\n\n".join(ast.unparse(node) for node in wanted)


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def lesson(request):
    namespace = {}
    exec(compile(helpers(request.param), str(request.param), "exec"), namespace)
    return namespace


def test_every_lesson_defines_the_same_names_used():
    sources = {path.name: helpers(path).split("def forbid")[0] for path in NOTEBOOKS}
    assert len(set(sources.values())) == 1, sorted(sources)


def test_library_uses_are_found(lesson):
    def dot(x, w):
        return np.dot(x, w)

    def loss(z, y):
        return losses.softmax_cross_entropy(z, y)

    def imported_inside(z, y):
        from course.losses import softmax_cross_entropy
        return softmax_cross_entropy(z, y)

    class Net:
        def forward(self, x):
            return np.linalg.norm(x)

        @staticmethod
        def loss(z, y):
            return losses.half_sse(z, y)

    names_used = lesson["names_used"]
    assert {"np", "dot"} <= names_used(dot)
    assert {"losses", "softmax_cross_entropy"} <= names_used(loss)
    assert {"course", "losses", "softmax_cross_entropy"} <= names_used(imported_inside)
    assert {"np", "linalg", "norm", "losses", "half_sse"} <= names_used(Net)
    with pytest.raises(AssertionError, match="loss uses losses"):
        lesson["forbid"](loss, "losses")


def test_the_students_own_attributes_and_variables_are_not_library_uses(lesson):
    class MLP:
        def __init__(self):
            self.losses, self.activations = [], []

        def forward(self, x):
            activations = [x]
            self.activations.append(x)
            return activations

    def train(X):
        losses = [0.0]  # a local variable that shadows the module's name
        return losses

    names_used = lesson["names_used"]
    assert not {"losses", "activations"} & names_used(MLP)
    assert "losses" not in names_used(train)
    lesson["forbid"](MLP, "losses", "activations")  # does not raise
    lesson["forbid"](train, "losses")
