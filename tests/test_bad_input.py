"""Bad and extreme inputs to the losses and activations, in one table.

Each row: the function, its inputs, and what must come out: a value (for a loss,
the pair (loss, gradient)) or an exception with a fragment of its message. Where
PyTorch has the same function, the row also says how to ask PyTorch, and a second
test checks that PyTorch agrees (or refuses too). A third test runs every row on
``array_api_strict`` arrays on a device other than the default one.

No row may warn: the project's pytest configuration turns RuntimeWarning into an
error, and the tests below do too, so that they say the same when run alone.
"""
import warnings

import numpy as np
import pytest

from course import activations as A
from course import losses


class Raises:
    """The expected outcome of a row that must raise ``error`` with ``fragment`` in its message."""

    def __init__(self, error, fragment):
        self.error, self.fragment = error, fragment

    def __repr__(self):
        return f"Raises({self.error.__name__}, {self.fragment!r})"


def a(values, dtype=np.float64):
    """A NumPy array of ``dtype`` (a short name for the table)."""
    return np.array(values, dtype=dtype)


NAN = np.nan
EPS = np.finfo(np.float64).eps
EMPTY = "got an empty batch"


# ------------------------------------------------------------ what PyTorch is asked

def torch_cross_entropy(torch, logits, labels):
    """PyTorch's loss and gradient for (logits, labels)."""
    z = torch.tensor(logits, requires_grad=True)
    target = torch.from_numpy(labels)
    if not target.dtype.is_floating_point and target.ndim == 2:
        target = target.to(z.dtype)  # PyTorch takes rows of probabilities only as floats
    loss = torch.nn.functional.cross_entropy(z, target)
    loss.backward()
    return loss.item(), z.grad.numpy()


def torch_bce(torch, p, y):
    """PyTorch's binary cross-entropy of (p, y), with its gradient."""
    p_t = torch.tensor(p, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy(p_t, torch.from_numpy(y))
    loss.backward()
    return loss.item(), p_t.grad.numpy()


def torch_value(name):
    """PyTorch's ``torch.<name>`` applied to the one input."""
    return lambda torch, z: getattr(torch, name)(torch.from_numpy(z)).numpy()


def torch_softmax(torch, z):
    return torch.softmax(torch.from_numpy(z), dim=1).numpy()


def torch_derivative(name):
    """The derivative of ``torch.<name>`` at the one input, by autograd."""
    def derivative(torch, z):
        t = torch.tensor(z, requires_grad=True)
        getattr(torch, name)(t).backward(torch.ones_like(t))
        return t.grad.numpy()
    return derivative


# ------------------------------------------------------------ the table

SCE, BCE = losses.softmax_cross_entropy, losses.binary_cross_entropy
F64, F32, F16 = (1e308, np.float64), (3e38, np.float32), (6e4, np.float16)

CASES = [
    # Logits spanning the whole range of their dtype: z - max would overflow.
    # Class 0 costs 0, class 2 costs big - 0 = big; class 1 costs 2 big, beyond the dtype: inf.
    *[pytest.param(SCE, (a([[big, -big, 0]], dt), a([label], np.int64)),
                   (loss, a(grad)), torch_cross_entropy, id=f"cross-entropy-{dt.__name__}-class-{label}")
      for big, dt in (F64, F32, F16)
      for label, loss, grad in [(0, 0.0, [[0, 0, 0]]), (1, np.inf, [[1, -1, 0]]),
                                (2, float(dt(big)), [[1, 0, -1]])]],
    *[pytest.param(A.softmax, (a([[big, -big, 0]], dt),), a([[1, 0, 0]], dt), torch_softmax,
                   id=f"softmax-{dt.__name__}")
      for big, dt in (F64, F32, F16)],
    # One-hot rows of integers are class numbers too; rows that are not distributions are refused.
    pytest.param(SCE, (a([[2.0, 0.0, -1.0]]), a([[1, 0, 0]], np.int64)),
                 SCE(a([[2.0, 0.0, -1.0]]), a([0], np.int64)), torch_cross_entropy, id="integer-one-hot"),
    pytest.param(SCE, (a([[0, 0], [0, 0]]), a([[1, 0], [1.5, -0.5]])),
                 Raises(ValueError, "target row 1 is not a probability distribution: it has a negative"),
                 None, id="target-row-negative"),  # PyTorch takes such rows silently
    pytest.param(SCE, (a([[0, 0], [0, 0]]), a([[0.5, 0.4], [0, 1]])),
                 Raises(ValueError, "target row 0 is not a probability distribution: it sums to 0.9"),
                 None, id="target-row-sum"),
    pytest.param(SCE, (a([[0, 0]]), a([2], np.int64)), Raises(ValueError, "label 2 is out of range"),
                 torch_cross_entropy, id="label-out-of-range"),
    # Empty batches: PyTorch returns NaN (a mean over nothing); the course says so instead.
    pytest.param(losses.half_sse, (a(np.zeros((0, 3))), a(np.zeros((0, 3)))),
                 Raises(ValueError, f"half_sse: {EMPTY} (prediction of shape (0, 3)"), None,
                 id="empty-half_sse"),
    pytest.param(losses.mse, (a(np.zeros((0, 3))), a(np.zeros((0, 3)))),
                 Raises(ValueError, f"mse: {EMPTY} (prediction of shape (0, 3)"), None, id="empty-mse"),
    pytest.param(BCE, (a(np.zeros((0, 1))), a(np.zeros((0, 1)))),
                 Raises(ValueError, f"binary_cross_entropy: {EMPTY} (p of shape (0, 1)"), None,
                 id="empty-bce"),
    pytest.param(SCE, (a(np.zeros((0, 3))), a([], np.int64)),
                 Raises(ValueError, f"softmax_cross_entropy: {EMPTY} (logits of shape (0, 3)"), None,
                 id="empty-cross-entropy"),
    # Binary cross-entropy takes probabilities, not scores, and targets in [0, 1].
    pytest.param(BCE, (a([[1.5], [0.5]]), a([[1.0], [0.0]])),
                 Raises(ValueError, "but 1 entry does not (the first is 1.5)"), torch_bce,
                 id="bce-p-above-1"),
    pytest.param(BCE, (a([[-0.1], [-2.0]]), a([[0.0], [0.0]])),
                 Raises(ValueError, "but 2 entries do not (the first is -0.1)"), torch_bce,
                 id="bce-p-below-0"),
    pytest.param(BCE, (a([[0.5]]), a([[2.0]])),
                 Raises(ValueError, "every entry of y must lie in [0, 1]"), torch_bce, id="bce-y-above-1"),
    pytest.param(BCE, (a([[1]], np.int64), a([[1]], np.int64)),
                 Raises(TypeError, "p must hold floating-point probabilities (e.g. the output of a sigmoid)"),
                 torch_bce, id="bce-integer-p"),
    # p = 0 or 1 exactly is clipped to [eps, 1 - eps]: a large finite loss and gradient
    # (PyTorch clamps the log at -100 instead).
    pytest.param(BCE, (a([[0.0], [1.0]]), a([[1.0], [1.0]])),
                 (-(np.log(EPS) + np.log(1 - EPS)) / 2, a([[-1 / (2 * EPS)], [-1 / (2 * (1 - EPS))]])),
                 None, id="bce-p-exactly-0-and-1"),
    # A NaN probability gives a NaN loss, which train.fit reports as a diverged run (PyTorch raises).
    pytest.param(BCE, (a([[NAN]]), a([[1.0]])), (NAN, a([[NAN]])), None, id="bce-nan-p"),
    # NaN in, NaN out, without a warning. PyTorch's backward of relu, leaky_relu and its
    # heaviside step give 1, alpha and 0 at NaN; the course keeps the NaN visible.
    pytest.param(A.sigmoid, (a(NAN),), a(NAN), torch_value("sigmoid"), id="sigmoid-nan"),
    pytest.param(A.sigmoid_derivative, (a(NAN),), a(NAN), torch_derivative("sigmoid"), id="sigmoid'-nan"),
    pytest.param(A.tanh_derivative, (a(NAN),), a(NAN), torch_derivative("tanh"), id="tanh'-nan"),
    pytest.param(A.relu, (a([NAN, -1.0, 2.0]),), a([NAN, 0, 2]), torch_value("relu"), id="relu-nan"),
    pytest.param(A.relu_derivative, (a([NAN, -1.0, 2.0]),), a([NAN, 0, 1]), None, id="relu'-nan"),
    pytest.param(A.leaky_relu_derivative, (a([NAN, -1.0, 2.0]),), a([NAN, 0.01, 1]), None,
                 id="leaky_relu'-nan"),
    pytest.param(A.step, (a([NAN, 0.0, 2.0]),), a([NAN, 0, 1]), None, id="step-nan"),
    pytest.param(A.identity_derivative, (a([NAN, 2.0]),), a([NAN, 1]), None, id="identity'-nan"),
    pytest.param(A.softmax, (a([[NAN, 0.0], [0.0, 0.0]]),), a([[NAN, NAN], [0.5, 0.5]]), torch_softmax,
                 id="softmax-nan-row"),
]


def check_outcome(outcome, expected):
    """Compare a function's outcome with the row's expected one (a value, or (loss, gradient))."""
    if isinstance(expected, tuple):  # a loss: (loss as a Python float, gradient array)
        loss, grad = outcome
        assert type(loss) is float
        np.testing.assert_allclose(loss, expected[0], rtol=1e-14, atol=0, equal_nan=True)
        check_outcome(grad, expected[1])
        return
    assert outcome.shape == expected.shape
    np.testing.assert_allclose(outcome, expected, rtol=1e-14, atol=0, equal_nan=True)


def run(fn, args, expected):
    """Call fn(*args) with warnings as errors. A row that must raise is checked here (and
    gives None); otherwise the outcome is returned, for the caller to compare."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if isinstance(expected, Raises):
            with pytest.raises(expected.error) as info:
                fn(*args)
            assert expected.fragment in str(info.value)
            return None
        return fn(*args)


@pytest.mark.parametrize("fn, args, expected, torch_ref", CASES)
def test_bad_input(fn, args, expected, torch_ref):
    outcome = run(fn, args, expected)
    if outcome is not None:
        check_outcome(outcome, expected)
        values = outcome[1] if isinstance(outcome, tuple) else outcome
        assert values.dtype == args[0].dtype  # results keep the input's dtype


@pytest.mark.parametrize("fn, args, expected, torch_ref",
                         [case for case in CASES if case.values[3] is not None])
def test_pytorch_agrees(fn, args, expected, torch_ref):
    torch = pytest.importorskip("torch", reason="PyTorch is the optional second reference")
    if isinstance(expected, Raises):
        with pytest.raises((RuntimeError, ValueError, IndexError, NotImplementedError)):
            torch_ref(torch, *args)  # PyTorch refuses too (with its own exception and words)
    else:
        check_outcome(torch_ref(torch, *args), expected)


@pytest.mark.parametrize("fn, args, expected, torch_ref", CASES)
def test_bad_input_on_array_api_strict(fn, args, expected, torch_ref):
    """The same outcomes on array_api_strict arrays on a second device (it has no float16)."""
    xps = pytest.importorskip("array_api_strict", reason="installed with the test extras")
    if any(arg.dtype == np.float16 for arg in args):
        pytest.skip("the array API has no float16")
    device = xps.Device("device1")
    outcome = run(fn, tuple(xps.asarray(arg, device=device) for arg in args), expected)
    if outcome is None:
        return
    values = outcome[1] if isinstance(outcome, tuple) else outcome
    assert type(values).__module__.startswith("array_api_strict") and values.device == device
    values = np.from_dlpack(values)  # to NumPy, to compare
    check_outcome((outcome[0], values) if isinstance(outcome, tuple) else values, expected)
