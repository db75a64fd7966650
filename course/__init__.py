"""Neural networks from scratch: the small library behind the course notebooks.

Submodules are imported on first use (``course.nn``, ``course.data``, ...), so
``import course`` is quick and never pulls in matplotlib, ipywidgets or CuPy.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "activations", "backend", "cli", "conv", "cpu", "data", "flops", "gradcheck", "graph",
    "init", "losses", "mnist", "module", "neuron", "nn", "optim", "parallel", "plot",
    "regularize", "train", "widgets",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"course.{name}")
    raise AttributeError(f"module 'course' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
