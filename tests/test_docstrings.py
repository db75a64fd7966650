"""Every public name of the library is documented, and numeric functions give shapes.

The first test walks every module of the ``course`` package (``course.grading`` is
checked by its own tests) and lists each public function, class, method or property
without a docstring. A name is checked once, in the module that defines it, so a
re-exported name does not count twice.

The second test holds a short, hand-picked list of functions that take arrays and
asserts that their docstrings state shapes, in the library's one convention
(batch-first: ``X: (N, D)``, ``W: (n_in, n_out)``), or say ``any shape`` /
``same shape`` for elementwise operations.
"""
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import course

# Dunder methods need no docstring, except __call__, which is how a model is used.
DOCUMENTED_DUNDERS = ("__call__",)


def _modules():
    """The names of the package's modules, ``course`` itself included; no subpackages."""
    names = ["course"]
    for info in pkgutil.iter_modules(course.__path__):
        if not info.ispkg and not info.name.startswith("_"):
            names.append(f"course.{info.name}")
    return sorted(names)


def _is_public(name):
    return not name.startswith("_") or name in DOCUMENTED_DUNDERS


def _has_doc(obj):
    return bool((obj.__doc__ or "").strip())


def _class_offenders(cls, module, prefix):
    """``module.Class.member`` for every undocumented public method or property of ``cls``."""
    offenders = []
    for name, attr in vars(cls).items():
        if not _is_public(name):
            continue
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if isinstance(attr, property):
            target = attr.fget
        elif inspect.isfunction(attr) or inspect.isclass(attr):
            target = attr
        else:
            continue  # plain class attributes (constants, slots, field descriptors)
        if getattr(target, "__module__", None) != module.__name__:
            continue  # borrowed from another module, e.g. staticmethod(activations.relu)
        if inspect.isclass(attr):
            if attr.__qualname__.startswith(f"{cls.__qualname__}."):  # a nested class
                offenders += _offenders_of(attr, module, f"{prefix}.{name}")
            continue
        if not _has_doc(attr):
            offenders.append(f"{prefix}.{name}")
    return offenders


def _offenders_of(obj, module, name):
    offenders = [] if _has_doc(obj) else [name]
    if inspect.isclass(obj):
        offenders += _class_offenders(obj, module, name)
    return offenders


def _undocumented(module):
    offenders = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if obj.__module__ != module.__name__:
            continue  # imported or re-exported: checked in its home module
        offenders += _offenders_of(obj, module, f"{module.__name__}.{obj.__qualname__}")
    return offenders


def test_the_walk_finds_the_library():
    names = _modules()
    for expected in ("course.activations", "course.graph", "course.nn", "course.widgets"):
        assert expected in names
    assert not any(name.startswith("course.grading") for name in names)


def test_the_walk_sees_methods_and_properties():
    class Example:
        def __call__(self, x):
            return x

        @property
        def size(self):
            return 0

        def forward(self, x):
            """x: (N, D) -> out: (N, D)."""
            return x

        def _helper(self):
            return None

    module = inspect.getmodule(Example)
    found = _class_offenders(Example, module, "Example")
    assert found == ["Example.__call__", "Example.size"]


def test_every_public_name_has_a_docstring():
    offenders = []
    for name in _modules():
        offenders += _undocumented(importlib.import_module(name))
    assert not offenders, (
        f"{len(offenders)} public names have no docstring:\n  " + "\n  ".join(offenders)
    )


# Array-taking functions whose docstrings must state shapes: module, qualified name.
SHAPED = [
    ("course.activations", "sigmoid"),
    ("course.activations", "tanh"),
    ("course.activations", "relu"),
    ("course.activations", "leaky_relu"),
    ("course.activations", "softmax"),
    ("course.activations", "softmax_backward"),
    ("course.losses", "half_sse"),
    ("course.losses", "mse"),
    ("course.losses", "binary_cross_entropy"),
    ("course.losses", "softmax_cross_entropy"),
    ("course.losses", "one_hot"),
    ("course.nn", "Module.forward"),
    ("course.nn", "Module.backward"),
    ("course.nn", "Dense.forward"),
    ("course.nn", "Dense.backward"),
    ("course.nn", "Activation.forward"),
    ("course.nn", "Activation.backward"),
    ("course.nn", "Softmax.forward"),
    ("course.nn", "Softmax.backward"),
    ("course.nn", "Sequential.forward"),
    ("course.nn", "Sequential.backward"),
    ("course.init", "uniform"),
    ("course.init", "xavier"),
    ("course.init", "he"),
    ("course.gradcheck", "rel_error"),
    ("course.gradcheck", "numerical_gradient"),
    ("course.gradcheck", "check_gradients"),
    ("course.gradcheck", "check_module"),
]

# "(N, D)", "(N,)", "(n_in, n_out)", "(2,)": a parenthesised tuple whose first entry is
# a dimension (a capital letter, an n_... name or a number), or the words for elementwise.
SHAPE = re.compile(r"\(\s*(?:[A-Z]\w{0,2}|n_\w+|\d+)\s*,|\b(?i:any|same) shape\b")


def test_the_shape_pattern():
    for text in ("X: (N, D) -> Z: (N, M)", "w: (D,)", "shape: (n_in, n_out)",
                 "z: any shape -> same shape", "P: (M, 2)", "w: (2,) weights"):
        assert SHAPE.search(text), text
    for text in ("Returns (loss, grad).", "p, y: (p, y) pairs", "the update (see above)"):
        assert not SHAPE.search(text), text


@pytest.mark.parametrize("module_name, qualname", SHAPED,
                         ids=[f"{m}.{q}" for m, q in SHAPED])
def test_numeric_docstrings_give_shapes(module_name, qualname):
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        assert obj is not None, f"{module_name}.{qualname} does not exist; update SHAPED"
    doc = inspect.cleandoc(obj.__doc__ or "")
    assert SHAPE.search(doc), (
        f"{module_name}.{qualname}: the docstring gives no shape such as 'X: (N, D)', "
        f"'any shape' or 'same shape':\n{doc or '(no docstring)'}"
    )


def test_no_module_of_the_library_is_over_350_lines():
    """Course material is read whole: a module that grows past 350 lines is split instead
    (the grader's package, course/grading/, is not counted here)."""
    library = Path(course.__file__).parent
    long = {path.name: n for path in library.glob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 350}
    assert not long, long
