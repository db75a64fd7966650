"""Layers with a forward and a backward pass.

Arrays are batch-first: ``X`` is ``(N, D)``, one example per row. A dense layer
computes ``Z = X @ W + b`` with ``W: (n_in, n_out)`` and ``b: (n_out,)``.
(PyTorch's ``nn.Linear`` stores the transpose, ``(n_out, n_in)``, and computes
``X @ W.T + b``; the seeds' column-vector notation writes ``W x + b``.)

Every module follows one contract:

    out = m(x)            # forward: computes and caches what backward needs
    dx = m.backward(dout) # backward: adds dL/dparam into each .grad, returns dL/dx
    m.parameters()        # list of Parameter
    m.zero_grad()         # set every .grad to 0

Gradients accumulate (``+=``) as in PyTorch, so call ``zero_grad()`` (or the
optimizer's) before each backward pass.
"""
import numpy as np

from course import activations, backend, init as initializers
from course.backend import namespace


def _matmul(a, b):
    """a: (N, K) @ b: (K, M) -> (N, M), the matrix product of two 2-D arrays.

    NumPy arrays are multiplied with ``a.dot(b)``, the same product as ``a @ b``
    for 2-D arrays: on the tiny matrices of per-sample SGD, ``@`` spends about
    0.9 microseconds in NumPy's dispatch and ``dot`` 0.3.
    """
    if type(a) is np.ndarray:
        return a.dot(b)
    return namespace(a).matmul(a, b)


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same shape, same dtype)."""

    def __init__(self, data, name=""):
        self.data = data
        self.grad = namespace(data).zeros_like(data)
        self.name = name

    @property
    def shape(self):
        """The shape of ``data`` (and of ``grad``) as a tuple, e.g. (n_in, n_out) for a Dense W."""
        return tuple(self.data.shape)

    def __repr__(self):
        return f"Parameter({self.name or '?'}, shape={self.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: subclasses implement ``forward(x)`` and ``backward(dout)``."""

    def __call__(self, x):
        """out = m(x) is ``m.forward(x)``: x: (N, D) -> out: (N, M)."""
        return self.forward(x)

    def forward(self, x):
        """x: (N, D) -> out: (N, M); caches what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dout):
        """dout = dL/dout: (N, M) -> dL/dx: (N, D); adds into each parameter's ``.grad``."""
        raise NotImplementedError

    def parameters(self):
        """All Parameters of this module and the modules inside it."""
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def zero_grad(self):
        """Set every parameter's ``.grad`` to 0 (in place, same shape)."""
        for p in self.parameters():
            p.grad[...] = 0

    def to(self, device):
        """Move the parameters to ``"cpu"``, ``"gpu"`` or any array-API namespace; returns self."""
        if device == "cpu":
            move = backend.to_numpy
        elif device == "gpu":
            xp = backend._cupy()
            move = xp.asarray
        elif hasattr(device, "asarray"):
            move = device.asarray
        else:
            raise ValueError(f"device must be 'cpu', 'gpu' or an array namespace, got {device!r}")
        for p in self.parameters():
            p.data = move(p.data)
            p.grad = move(p.grad)
        return self


class Dense(Module):
    """Fully connected layer, Z = X @ W + b.

    Args:
        n_in: inputs per example (D).
        n_out: outputs per example (M).
        init: name of a ``course.init`` function for W (default ``"xavier"``) or
            a callable ``f(shape, rng, dtype)``. b starts at zero.
        rng: seed or ``numpy.random.Generator``, for reproducible weights.
        dtype: float64 (default, exact examples and gradient checks) or float32.

    Shapes: X: (N, n_in) -> Z: (N, n_out); W: (n_in, n_out); b: (n_out,).
    """

    def __init__(self, n_in, n_out, init="xavier", rng=None, dtype=np.float64):
        if int(n_in) < 1 or int(n_out) < 1:
            raise ValueError(f"Dense needs n_in >= 1 and n_out >= 1, got ({n_in}, {n_out})")
        self.n_in, self.n_out = int(n_in), int(n_out)
        W = initializers.get(init)((self.n_in, self.n_out), rng, dtype)
        self.W = Parameter(backend.asarray(W, dtype=dtype), "W")
        self.b = Parameter(backend.asarray(np.zeros(self.n_out, dtype=dtype)), "b")
        self.X = None

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out})"

    def forward(self, X):
        """X: (N, n_in) -> Z: (N, n_out)."""
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(
                f"{self!r} expects input of shape (N, {self.n_in}) but got {tuple(X.shape)}; "
                f"W has shape {self.W.shape}"
            )
        if X.dtype != self.W.data.dtype:
            raise TypeError(
                f"{self!r} has {self.W.data.dtype} weights but the input is {X.dtype}; "
                f"convert the input first, e.g. X.astype(np.{self.W.data.dtype})"
            )
        self.X = X
        # b[None, :] is b as a (1, n_out) row, added to every row of X @ W (broadcasting);
        # written as a row, one example is added faster (0.4 instead of 0.8 microseconds)
        return _matmul(X, self.W.data) + self.b.data[None, :]  # X @ W + b

    def backward(self, dout, input_grad=True):
        """dout: (N, n_out) -> dX: (N, n_in); adds dW = X^T dout, db = sum_rows(dout).

        With ``input_grad=False`` dX is not computed (None is returned): the
        first layer of a network needs no gradient for the data, and skipping
        that product saves about a sixth of the work of a training step.
        """
        if self.X is None:
            raise RuntimeError(f"{self!r}.backward called before forward")
        if dout.shape != (self.X.shape[0], self.n_out):  # array-API shapes are tuples
            raise ValueError(
                f"{self!r}.backward expects dout of shape {(self.X.shape[0], self.n_out)}, "
                f"got {tuple(dout.shape)}"
            )
        self.W.grad += _matmul(self.X.T, dout)  # X^T @ dout
        # one example (per-sample SGD): the sum over rows is that row, without a reduction
        self.b.grad += dout[0] if dout.shape[0] == 1 else namespace(dout).sum(dout, axis=0)
        return _matmul(dout, self.W.data.T) if input_grad else None  # dout @ W^T


class Activation(Module):
    """A parameter-free elementwise layer: out = g(z), dz = dout * g'(z)."""

    function = staticmethod(activations.identity)
    derivative = staticmethod(activations.identity_derivative)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, z):
        """z: any shape -> out: same shape."""
        self.z = z
        return self.function(z)

    def backward(self, dout):
        """dout: shape of z -> dz: same shape."""
        return dout * self.derivative(self.z)


class Identity(Activation):
    """g(z) = z."""


class Step(Activation):
    """Heaviside step; its backward raises, because its derivative is useless for learning."""

    function = staticmethod(activations.step)
    derivative = staticmethod(activations.step_derivative)


class Tanh(Activation):
    """tanh, with dz = dout * (1 - out^2)."""

    def forward(self, z):
        """z: any shape -> out: same shape, tanh(z) (cached for backward)."""
        self.out = activations.tanh(z)
        return self.out

    def backward(self, dout):
        """dout: shape of z -> dz: same shape, dout * (1 - out^2)."""
        return dout * (1.0 - self.out * self.out)


class Sigmoid(Activation):
    """Logistic sigmoid, with dz = dout * out * (1 - out)."""

    def forward(self, z):
        """z: any shape -> out: same shape, sigmoid(z) (cached for backward)."""
        self.out = activations.sigmoid(z)
        return self.out

    def backward(self, dout):
        """dout: shape of z -> dz: same shape, dout * out * (1 - out)."""
        return dout * self.out * (1.0 - self.out)


class ReLU(Activation):
    """max(z, 0), with dz = dout where z > 0 else 0."""

    function = staticmethod(activations.relu)
    derivative = staticmethod(activations.relu_derivative)


class LeakyReLU(Activation):
    """z if z > 0 else alpha * z."""

    def __init__(self, alpha=0.01):
        if not alpha >= 0:
            raise ValueError(f"LeakyReLU alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def __repr__(self):
        return f"LeakyReLU({self.alpha})"

    def forward(self, z):
        """z: any shape -> out: same shape."""
        self.z = z
        return activations.leaky_relu(z, self.alpha)

    def backward(self, dout):
        """dout: shape of z -> dz: same shape, dout where z > 0 else alpha * dout."""
        return dout * activations.leaky_relu_derivative(self.z, self.alpha)


class Softmax(Activation):
    """Softmax over the last axis.  z: (N, K) -> out: (N, K).

    For classification prefer ``losses.softmax_cross_entropy`` on the logits:
    it fuses the two steps and is more stable.
    """

    def forward(self, z):
        """z: (N, K) -> out: (N, K), each row summing to 1 (cached for backward)."""
        self.out = activations.softmax(z)
        return self.out

    def backward(self, dout):
        """dout: (N, K) -> dz: (N, K)."""
        return activations.softmax_backward(self.out, dout)


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse.  Indexable: ``model[0].W``."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is {layer!r}, not a course.nn Module")
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"

    def parameters(self):
        """All Parameters of the layers, first layer first."""
        return [p for layer in self.layers for p in layer.parameters()]

    def forward(self, x):
        """x: (N, D) -> out: (N, M), the output of the last layer (M its width)."""
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"layer {i} of the Sequential: {exc}") from None
        return x

    def backward(self, dout, input_grad=True):
        """dout = dL/dout: (N, M), shaped like the output -> dL/dx: (N, D).

        ``input_grad=False`` skips dL/dx when the first layer is Dense (returns None).
        """
        first = self.layers[0]
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout)
        if isinstance(first, (Dense, Sequential)):
            return first.backward(dout, input_grad)
        return first.backward(dout)


_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU,
                "identity": Identity}


def mlp(sizes, activation="relu", init=None, rng=None, dtype=np.float64):
    """A multilayer perceptron: Dense layers of ``sizes`` with ``activation`` between them.

    ``mlp([784, 256, 10])`` is Dense(784, 256), ReLU, Dense(256, 10); the last
    layer outputs logits (no activation). ``init`` defaults to He for ReLU-like
    activations and Xavier otherwise. One ``rng`` seeds all layers in turn.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {sizes}")
    if init is None:
        init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    rng = initializers._rng(rng)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out, init=init, rng=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return Sequential(*layers)
