"""Activation functions and their derivatives.

Every function takes an array ``z`` of any shape (usually ``(N, M)``, a batch of
pre-activations) and returns an array of the same shape and dtype. The
derivative functions take the same ``z`` and return dg/dz elementwise.

They are written to be numerically stable: ``sigmoid(1000.0)`` is exactly 1.0
and ``sigmoid(-1000.0)`` is 0.0, with no overflow warning, and softmax never
exponentiates a positive number.
"""
from course.backend import namespace


def identity(z):
    """g(z) = z.  z: any shape -> same shape."""
    return z


def identity_derivative(z):
    """g'(z) = 1.  z: any shape -> same shape."""
    xp = namespace(z)
    return xp.ones_like(xp.asarray(z))


def step(z):
    """Heaviside step: 1 where z > 0, else 0 (so step(0) = 0).  z: any shape -> same shape.

    This is the activation of Rosenblatt's perceptron and of the seeds'
    threshold units.
    """
    xp = namespace(z)
    z = xp.asarray(z)
    return xp.astype(z > 0, z.dtype)


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

    Computed as exp(-log(1 + e^-z)), where ``logaddexp(0, -z)`` = log(1 + e^-z)
    never overflows, so sigmoid(-1000.0) is 0.0 with no warning (1 / (1 + e^1000)
    overflows). Measured against 80-bit arithmetic in float64, the relative error
    is at most 2.5 units in the last place for z > -5. Between -40 and -5 the
    exp magnifies the rounding of the log, up to about 16 units (2e-15 relative):
    far below anything training notices.
    """
    xp = namespace(z)
    return xp.exp(-xp.logaddexp(0.0, -xp.asarray(z)))


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
    """max(z, 0).  z: any shape -> same shape."""
    return namespace(z).maximum(z, 0.0)


def relu_derivative(z):
    """1 where z > 0, else 0 (we take 0 at z = 0, as PyTorch does).  z: any shape -> same shape."""
    xp = namespace(z)
    z = xp.asarray(z)
    return xp.astype(z > 0, z.dtype)


def leaky_relu(z, alpha=0.01):
    """z where z > 0, else alpha * z.  z: any shape -> same shape."""
    xp = namespace(z)
    z = xp.asarray(z)
    return xp.where(z > 0, z, alpha * z)


def leaky_relu_derivative(z, alpha=0.01):
    """1 where z > 0, else alpha.  z: any shape -> same shape."""
    xp = namespace(z)
    z = xp.asarray(z)
    return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, alpha))


def softmax(z, axis=-1):
    """Softmax along ``axis``: exp(z_k) / sum_j exp(z_j).  z: (N, K) -> (N, K), rows sum to 1.

    The row maximum is subtracted first: softmax(z) = softmax(z - c) for any c,
    and with c = max every exponent is <= 0, so nothing overflows.
    """
    xp = namespace(z)
    z = xp.asarray(z)
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softmax_backward(s, dout, axis=-1):
    """Backprop through softmax given its output.  s, dout: (N, K) -> dz: (N, K).

    The Jacobian is diag(s) - s s^T, so dz = s * (dout - sum(dout * s)).
    """
    xp = namespace(s)
    return s * (dout - xp.sum(dout * s, axis=axis, keepdims=True))
