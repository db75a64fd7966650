"""Layers with a forward and a backward pass.

Arrays are batch-first: ``X`` is ``(N, D)``, one example per row. A dense layer
computes ``Z = X @ W + b`` with ``W: (n_in, n_out)`` and ``b: (n_out,)``.
(PyTorch's ``nn.Linear`` stores the transpose, ``(n_out, n_in)``, and computes
``X @ W.T + b``; column-vector notation writes ``W x + b``.)

Every module follows one contract (``course.module`` defines it):

    out = m(x)            # forward: computes and caches what backward needs
    dx = m.backward(dout) # backward: adds dL/dparam into each .grad, returns dL/dx
    m.parameters()        # every Parameter, of m and of the modules inside it
    m.zero_grad()         # set every .grad to 0
    m.train(), m.eval()   # training or evaluation mode (m.training), for m and its modules

Gradients accumulate (``+=``) as in PyTorch, so call ``zero_grad()`` (or the
optimizer's) before each backward pass. ``backward`` checks that ``dout`` has
the shape of the output, and raises ``RuntimeError`` when no forward came first.

The first layer of a network needs no gradient with respect to the data. Setting
``m.input_grad = False`` lets a module skip that work (its backward then returns
None); ``train.fit`` does this for the model it trains. For a ``Sequential``
the flag is its first layer's.

``Dropout`` and ``BatchNorm1d``, which behave differently in training and in
evaluation mode, live in ``course.regularize``, and the image layers ``Conv2D``,
``MaxPool2D`` and ``Flatten`` (im2col and one matrix product each) in ``course.conv``;
all are exported here.
"""
import numpy as np

from course import activations, backend
from course import init as initializers
from course.backend import namespace
from course.conv import Conv2D, Flatten, MaxPool2D
from course.module import Module, Parameter
from course.regularize import BatchNorm1d, Dropout

__all__ = ["Parameter", "Module", "Dense", "Activation", "Identity", "Step", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "Softmax", "Sequential", "mlp", "Dropout", "BatchNorm1d",
           "Conv2D", "MaxPool2D", "Flatten"]


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
        return X @ self.W.data + self.b.data

    def backward(self, dout):
        """dout: (N, n_out) -> dX: (N, n_in); adds dW = X^T dout: (n_in, n_out), db = sum_rows(dout).

        With ``input_grad`` False, dX is not computed and None is returned: the
        first layer of a network needs no gradient for the data, and skipping
        that product saves about a sixth of the work of a training step.
        """
        self._check_backward(dout, None if self.X is None else (self.X.shape[0], self.n_out))
        self.W.grad += self.X.T @ dout
        self.b.grad += namespace(dout).sum(dout, axis=0)
        return dout @ self.W.data.T if self.input_grad else None


class Activation(Module):
    """A parameter-free elementwise layer: out = g(z), and backward dz = dout * g'(z).

    A subclass defines ``function(z)``, which is g, and ``derivative(z, out)``,
    which is g'(z); it gets the output too, because sigmoid and tanh write their
    derivatives most cheaply through it.
    """

    z = out = None  # the last forward's input and output

    def function(self, z):
        """g(z).  z: any shape -> same shape."""
        raise NotImplementedError(f"{type(self).__name__} must define function(z)")

    def derivative(self, z, out):
        """g'(z), given z and out = g(z).  z, out: any shape -> same shape."""
        raise NotImplementedError(f"{type(self).__name__} must define derivative(z, out)")

    def forward(self, z):
        """z: any shape -> out: same shape (z and out are cached for backward)."""
        self.z, self.out = z, self.function(z)
        return self.out

    def backward(self, dout):
        """dout: shape of z -> dz: same shape, dout * g'(z)."""
        self._check_backward(dout, None if self.z is None else self.z.shape)
        return dout * self.derivative(self.z, self.out) if self.input_grad else None


class Identity(Activation):
    """g(z) = z, with dz = dout."""

    def function(self, z):
        """z: any shape -> z."""
        return z

    def derivative(self, z, out):
        """1 everywhere.  z: any shape -> same shape."""
        return activations.identity_derivative(z)


class Step(Activation):
    """Heaviside step; its backward raises, because its derivative is useless for learning."""

    def function(self, z):
        """1 where z > 0, else 0.  z: any shape -> same shape."""
        return activations.step(z)

    def derivative(self, z, out):
        """Raises ValueError: the step has no usable derivative."""
        return activations.step_derivative(z)


class Sigmoid(Activation):
    """Logistic sigmoid, with dz = dout * out * (1 - out)."""

    def function(self, z):
        """sigmoid(z).  z: any shape -> same shape."""
        return activations.sigmoid(z)

    def derivative(self, z, out):
        """out (1 - out).  z, out: any shape -> same shape."""
        return out * (1.0 - out)


class Tanh(Activation):
    """tanh, with dz = dout * (1 - out^2)."""

    def function(self, z):
        """tanh(z).  z: any shape -> same shape."""
        return activations.tanh(z)

    def derivative(self, z, out):
        """1 - out^2.  z, out: any shape -> same shape."""
        return 1.0 - out * out


class ReLU(Activation):
    """max(z, 0), with dz = dout where z > 0 else 0."""

    def function(self, z):
        """max(z, 0).  z: any shape -> same shape."""
        return activations.relu(z)

    def derivative(self, z, out):
        """1 where z > 0, else 0 (NaN where z is NaN).  z, out: any shape -> same shape.

        The output is z or 0, so its sign is exactly that: one fast pass over ``out``
        (``activations.relu_derivative(z)`` computes the same from z).
        """
        return namespace(out).sign(out)


class LeakyReLU(Activation):
    """z if z > 0 else alpha * z, with dz = dout where z > 0 else alpha * dout."""

    def __init__(self, alpha=0.01):
        if not alpha >= 0:
            raise ValueError(f"LeakyReLU alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha})"

    def function(self, z):
        """z where z > 0, else alpha z.  z: any shape -> same shape."""
        return activations.leaky_relu(z, self.alpha)

    def derivative(self, z, out):
        """1 where z > 0, else alpha.  z: any shape -> same shape."""
        return activations.leaky_relu_derivative(z, self.alpha)


class Softmax(Module):
    """Softmax over the last axis.  z: (N, K) -> out: (N, K).

    Not elementwise: each output depends on the whole row, so backward uses the
    Jacobian (see ``activations.softmax_backward``). For classification prefer
    ``losses.softmax_cross_entropy`` on the logits: it fuses the two steps and
    is more stable.
    """

    out = None

    def forward(self, z):
        """z: (N, K) -> out: (N, K), each row summing to 1 (cached for backward)."""
        self.out = activations.softmax(z)
        return self.out

    def backward(self, dout):
        """dout: (N, K) -> dz: (N, K)."""
        self._check_backward(dout, None if self.out is None else self.out.shape)
        return activations.softmax_backward(self.out, dout) if self.input_grad else None


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse.  Indexable: ``model[0].W``."""

    def __init__(self, *layers):
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is {layer!r}, not a course.nn Module")
        self.layers = list(layers)

    def __getitem__(self, i):
        """model[i] is the i-th layer; a slice gives a Sequential of those layers."""
        if isinstance(i, slice):
            return Sequential(*self.layers[i])
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): " + repr(layer).replace("\n", "\n  ")
                        for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    @property
    def input_grad(self):
        """Whether backward computes dL/dx: the first layer's flag (setting it sets the first layer's)."""
        return self.layers[0].input_grad

    @input_grad.setter
    def input_grad(self, flag):
        self.layers[0].input_grad = flag

    def forward(self, x):
        """x: (N, D) -> out: (N, M), the output of the last layer (M its width)."""
        for i, layer in enumerate(self.layers):
            try:
                x = layer.forward(x)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"layer {i} of the Sequential: {exc}") from None
        return x

    def backward(self, dout):
        """dout = dL/dout: (N, M), shaped like the output -> dL/dx: (N, D) (None if not input_grad)."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU,
                "identity": Identity}


def mlp(sizes, activation="relu", init=None, rng=None, dtype=np.float64):
    """A multilayer perceptron: Dense layers of ``sizes`` with ``activation`` between them.

    ``mlp([784, 256, 10])`` is Dense(784, 256), ReLU, Dense(256, 10): it maps
    X: (N, 784) to logits: (N, 10) (the last layer has no activation).
    ``init`` defaults to He for ReLU-like activations and Xavier otherwise.
    One ``rng`` seeds all layers in turn.
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
