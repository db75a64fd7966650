"""Gradient checking with centred finite differences.

The derivative of f at x is estimated by the centred difference

    df/dx ~ (f(x + h) - f(x - h)) / (2 h),

whose error shrinks like h^2 (a one-sided difference only like h). Checks run
in float64: in float32 the rounding error of f swamps the difference.

Compare an analytic gradient ``a`` with a numerical one ``n`` by the relative
error ``||a - n|| / (||a|| + ||n||)`` (with a floor, so that two zero gradients
do not divide zero by zero). With h = 1e-5 in float64:

- below 1e-7: the backward pass is right;
- 1e-7 to 1e-4: look closer (a kink such as ReLU at 0 may sit within h);
- above 1e-4: the backward pass is almost certainly wrong.
"""
import numpy as np

from course.backend import namespace, to_numpy


def rel_error(a, b, floor=1e-12):
    """Relative error ||a - b|| / max(||a|| + ||b||, floor) of two arrays of the same shape.

    Norms are Euclidean over all entries, so one tiny entry that finite
    differences can only resolve to ~1e-10 does not dominate the result.
    Returns a float in [0, 1].
    """
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    scale = max(float(np.linalg.norm(a) + np.linalg.norm(b)), floor)
    return float(np.linalg.norm(a - b)) / scale


def numerical_gradient(f, x, h=1e-5):
    """Centred-difference gradient of the scalar function ``f()`` w.r.t. the array ``x``.

    ``x`` (any shape, float64, any array namespace) is changed in place one
    entry at a time and restored, so ``f`` must read it; returns df/dx with the
    shape of ``x``, in the namespace and on the device of ``x``.
    """
    xp = namespace(x)
    if x.dtype != xp.float64:
        raise TypeError(
            f"gradient checks need float64 arrays, got {x.dtype}: rounding in lower "
            "precision swamps the finite differences (build the model with dtype=np.float64)"
        )
    grad = np.zeros(tuple(x.shape))
    for index in np.ndindex(*x.shape):
        old = float(x[index])
        x[index] = old + h
        f_plus = float(f())
        x[index] = old - h
        f_minus = float(f())
        x[index] = old
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad if xp is np else xp.asarray(grad, device=x.device)


def check_gradients(model, loss_fn, X, y, h=1e-5):
    """Compare ``model``'s backward pass with finite differences for every parameter.

    model: a ``course.nn`` Module; loss_fn: ``(loss, dy) = loss_fn(y_hat, y)``;
    X: (N, ...) float64; y: targets as ``loss_fn`` expects them.
    Returns the largest relative error over all parameters (see the module
    docstring for what counts as good).
    """
    def loss():
        return loss_fn(model(X), y)[0]

    model.zero_grad()
    _, dy = loss_fn(model(X), y)
    model.backward(dy)
    worst = 0.0
    for p in model.parameters():
        worst = max(worst, rel_error(p.grad, numerical_gradient(loss, p.data, h)))
    return worst


def check_module(module, x, h=1e-5, seed=0):
    """Check a module's backward (dx and every parameter's grad) with finite differences.

    Uses the scalar L = sum(module(x) * G) for a fixed random G, whose gradient
    w.r.t. the output is G. x: (N, ...) float64. Returns the largest relative error.
    """
    xp = namespace(x)
    G = np.random.default_rng(seed).standard_normal(tuple(module(x).shape))
    G = G if xp is np else xp.asarray(G, device=x.device)

    def loss():
        return xp.sum(module(x) * G)

    module.zero_grad()
    module(x)
    dx = module.backward(G)
    if dx is None:
        raise ValueError(f"{module!r}.backward returned None: set module.input_grad = True "
                         "to check the gradient with respect to its input")
    worst = rel_error(dx, numerical_gradient(loss, x, h))
    for p in module.parameters():
        worst = max(worst, rel_error(p.grad, numerical_gradient(loss, p.data, h)))
    return worst
