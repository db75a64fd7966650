"""Activation functions and their derivatives.

Every function takes an array ``z`` of any shape (usually ``(N, M)``, a batch of
pre-activations) and returns an array of the same shape and dtype. The
derivative functions take the same ``z`` and return dg/dz elementwise.

They are written to be numerically stable: ``sigmoid(1000.0)`` is exactly 1.0
and ``sigmoid(-1000.0)`` is 0.0, with no overflow warning, and softmax never
exponentiates a positive number, even for scores as far apart as 1e308 and -1e308.

A NaN in the input gives NaN in the output, silently, in every function and
every derivative. A NaN means that something upstream has already gone wrong
(most often a learning rate that is too large); it should stay visible, not turn
into a plausible 0 (``NaN > 0`` is False, so ``z > 0`` alone would hide it).

Every function works on the arrays of any array-API library (NumPy, CuPy,
``array_api_strict``, ...) and on Python numbers and lists.
"""
from course.backend import namespace


def _keep_nan(z, out):
    """``out``, with NaN wherever ``z`` is NaN.  z, out: same shape."""
    xp = namespace(z)
    return xp.where(xp.isnan(z), z, out)


def identity(z):
    """g(z) = z.  z: any shape -> same shape."""
    return z


def identity_derivative(z):
    """g'(z) = 1 (NaN where z is NaN).  z: any shape -> same shape."""
    xp = namespace(z)
    z = xp.asarray(z)
    return _keep_nan(z, xp.ones_like(z))


def step(z):
    """Heaviside step: 1 where z > 0, else 0 (so step(0) = 0).  z: any shape -> same shape.

    This is the activation of Rosenblatt's perceptron and of McCulloch and
    Pitts's threshold units. step(NaN) is NaN.
    """
    xp = namespace(z)
    z = xp.asarray(z)
    return _keep_nan(z, xp.astype(z > 0, z.dtype))


def step_derivative(z):
    """The step's derivative is 0 everywhere except at 0, where it does not exist.  z: any shape.

    Backpropagation multiplies by this derivative, so every gradient would be
    zero and nothing would learn. That is why gradient-trained networks use a
    smooth activation (sigmoid, tanh, ReLU) instead; this function raises.
    """
    raise ValueError(
        "the step function has no usable derivative (it is 0 wherever it exists), "
        "so backpropagation through it gives zero gradients. Use sigmoid, tanh or "
        "ReLU for networks trained by gradient descent; train step units with the "
        "perceptron rule (course.neuron.Perceptron)."
    )


def sigmoid(z):
    """Logistic sigmoid 1 / (1 + e^-z), stable for large |z|.  z: any shape -> same shape.

    Computed as exp(-log(1 + e^-z)), with log(1 + e^-z) written as
    max(-z, 0) + log1p(e^-|z|): the exponent -|z| is never positive, so nothing
    overflows and sigmoid(-1000.0) is 0.0 with no warning (1 / (1 + e^1000)
    overflows). A NaN gives NaN, silently (NumPy's ``logaddexp``, which computes
    the same log, warns about it). Measured against 80-bit arithmetic in float64,
    the relative error is at most 2.5 units in the last place for z > -5. Between
    -40 and -5 the exp magnifies the rounding of the log, up to about 16 units
    (2e-15 relative): far below anything training notices.
    """
    xp = namespace(z)
    z = xp.asarray(z)
    log_one_plus_exp = xp.maximum(-z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.exp(-log_one_plus_exp)


def sigmoid_derivative(z):
    """sigma'(z) = sigma(z) (1 - sigma(z)).  z: any shape -> same shape."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """Hyperbolic tangent.  z: any shape -> same shape."""
    return namespace(z).tanh(z)


def tanh_derivative(z):
    """tanh'(z) = 1 - tanh(z)^2.  z: any shape -> same shape."""
    t = tanh(z)
    return 1.0 - t * t


def relu(z):
    """max(z, 0).  z: any shape -> same shape (relu(NaN) is NaN)."""
    return namespace(z).maximum(z, 0.0)


def relu_derivative(z):
    """1 where z > 0, else 0 (we take 0 at z = 0, as PyTorch does): the step function.

    z: any shape -> same shape. NaN where z is NaN (PyTorch's backward gives 1 there).
    """
    return step(z)


def leaky_relu(z, alpha=0.01):
    """z where z > 0, else alpha * z.  z: any shape -> same shape."""
    xp = namespace(z)
    z = xp.asarray(z)
    return xp.where(z > 0, z, alpha * z)


def leaky_relu_derivative(z, alpha=0.01):
    """1 where z > 0, else alpha (NaN where z is NaN).  z: any shape -> same shape."""
    xp = namespace(z)
    z = xp.asarray(z)
    return _keep_nan(z, xp.where(z > 0, xp.ones_like(z), xp.full_like(z, alpha)))


def _below_max(z, axis):
    """How far each entry lies below the maximum along ``axis``: m - z >= 0.  z: (N, K) -> (N, K).

    The plain difference m - z overflows when the entries span more than the
    dtype's largest number F: in float64, 1e308 - (-1e308) is inf, with an
    overflow warning, and a later inf - inf is NaN. Half the difference,
    m/2 - z/2, never overflows, and it exceeds F/2 exactly when the whole
    difference would overflow. There the distance is set to inf without
    computing it: exp(-distance) is 0 either way.
    """
    xp = namespace(z)
    if not xp.isdtype(z.dtype, "real floating"):
        z = xp.astype(z, xp.float64)  # integer scores, e.g. softmax([[1, 2, 3]])
    m = xp.max(z, axis=axis, keepdims=True)
    too_far = m / 2 - z / 2 > xp.finfo(z.dtype).max / 2
    # Where too far, m - m = 0 is computed instead of m - z, and inf put in its place.
    return xp.where(too_far, xp.full_like(z, xp.inf), m - xp.where(too_far, m, z))


def softmax(z, axis=-1):
    """Softmax along ``axis``: exp(z_k) / sum_j exp(z_j).  z: any shape -> same shape.

    For scores z: (N, K) and the default axis, each row sums to 1. The maximum m
    along ``axis`` is subtracted first: softmax(z) = softmax(z - m), and every
    exponent z - m is <= 0, so nothing overflows. The difference is taken by
    ``_below_max``, so that even scores like [1e308, -1e308, 0] give [1, 0, 0]
    with no warning.
    """
    xp = namespace(z)
    e = xp.exp(-_below_max(xp.asarray(z), axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    """log(softmax(z)) along ``axis``, without taking the log of a rounded 0.  z: any shape -> same.

    log softmax(z)_k = (z_k - m) - log(sum_j exp(z_j - m)) with m the maximum, so
    it is finite (not log 0 = -inf) even where softmax rounds to 0: z = [1e4, 0]
    gives [0, -1e4]. Where z_k - m itself is beyond the dtype's range (z = [1e308,
    -1e308] in float64) the entry is -inf, without a warning.
    """
    xp = namespace(z)
    distance = _below_max(xp.asarray(z), axis)
    return -distance - xp.log(xp.sum(xp.exp(-distance), axis=axis, keepdims=True))


def softmax_backward(s, dout, axis=-1):
    """Backprop through softmax along ``axis`` given its output.  s, dout: any shape -> dz: same.

    The Jacobian is diag(s) - s s^T, so dz = s * (dout - sum(dout * s)), the sum along ``axis``.
    """
    xp = namespace(s)
    return s * (dout - xp.sum(dout * s, axis=axis, keepdims=True))
