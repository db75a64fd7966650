"""A scalar automatic-differentiation engine and a drawing of its graph.

Every arithmetic step on a ``Value`` creates a new ``Value`` that remembers
its inputs (``parents``) and the local derivative of the step with respect to
each input.  ``loss.backward()`` then walks the graph from the output back to
the inputs and applies the chain rule at every node:

    gradient of an input += [upstream gradient] x [local gradient]

    >>> x, y, z = Value(-2.0, "x"), Value(5.0, "y"), Value(-4.0, "z")
    >>> f = (x + y) * z
    >>> f.backward()
    >>> x.grad, y.grad, z.grad
    (-4.0, -4.0, 3.0)

``Neuron``, ``Layer`` and ``MLP`` build a small network out of ``Value``s, and
``draw(f)`` pictures the graph with each node's data and gradient.
"""
import functools
import io
import math
import numbers

import numpy as np

ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def _binary(op):
    """Let ``op(value, other)`` take a plain number as ``other``."""
    @functools.wraps(op)
    def wrapper(self, other):
        if isinstance(other, numbers.Real):
            other = Value(other)
        return op(self, other) if isinstance(other, Value) else NotImplemented
    return wrapper


class Value:
    """One number in a computational graph, plus its gradient.

    Attributes:
        data: the number (a Python float).
        grad: d(output)/d(this value) after ``output.backward()``; starts at 0.
        label: a name shown by ``draw`` (optional).
    """

    __array_ufunc__ = None  # numpy scalars on the left defer to Value

    def __init__(self, data, label=None, _parents=(), _local_grads=(), _op=""):
        if not isinstance(data, numbers.Real):
            raise TypeError(f"Value needs a real number, got {data!r}")
        self.data = float(data)
        self.grad = 0.0
        self.label = label or ""
        self._parents = _parents
        self._local_grads = _local_grads
        self._op = _op

    def __repr__(self):
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{label})"

    def _apply(self, op, data, others=(), local_grads=()):
        """Return the result of ``op`` as a new node of the graph."""
        return Value(data, None, (self, *others), local_grads, op)

    # Binary operations; ``_binary`` lets a plain number stand on either side.
    @_binary
    def __add__(self, other):
        return self._apply("+", self.data + other.data, (other,), (1.0, 1.0))

    @_binary
    def __sub__(self, other):
        return self._apply("-", self.data - other.data, (other,), (1.0, -1.0))

    @_binary
    def __mul__(self, other):
        return self._apply("*", self.data * other.data, (other,), (other.data, self.data))

    @_binary
    def __truediv__(self, other):
        q = self.data / other.data
        return self._apply("/", q, (other,), (1.0 / other.data, -q / other.data))

    __radd__, __rmul__ = __add__, __mul__

    @_binary
    def __rsub__(self, other):
        return other - self

    @_binary
    def __rtruediv__(self, other):
        return other / self

    def __pow__(self, n):
        if not isinstance(n, numbers.Real):
            raise TypeError(f"the exponent must be a plain number, got {n!r}")
        n = float(n)
        if self.data < 0 and not n.is_integer():
            raise ValueError(f"{self.data} ** {n} is not a real number")
        local = n * self.data ** (n - 1) if n != 0 else 0.0
        return self._apply(f"**{n:g}", self.data ** n, (), (local,))

    def __rpow__(self, base):
        if not isinstance(base, numbers.Real):
            return NotImplemented
        if base <= 0:
            raise ValueError(f"base ** Value needs a positive number base, got {base!r}")
        out = base ** self.data
        return self._apply(f"{base:g}**", out, (), (out * math.log(base),))

    def __neg__(self):
        return self._apply("neg", -self.data, (), (-1.0,))

    # Functions of one value: f(x) and its derivative f'(x).
    def exp(self):
        """e^x; local gradient e^x."""
        e = math.exp(self.data)
        return self._apply("exp", e, (), (e,))

    def log(self):
        """ln x (x > 0); local gradient 1/x."""
        if self.data <= 0:
            raise ValueError(f"log needs a positive number, got {self.data}")
        return self._apply("log", math.log(self.data), (), (1.0 / self.data,))

    def tanh(self):
        """tanh x; local gradient 1 - tanh^2 x."""
        t = math.tanh(self.data)
        return self._apply("tanh", t, (), (1.0 - t * t,))

    def sigmoid(self):
        """1 / (1 + e^-x); local gradient s (1 - s)."""
        x = self.data  # two forms, so that exp never overflows
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return self._apply("sigmoid", s, (), (s * (1.0 - s),))

    def relu(self):
        """max(x, 0); local gradient 1 if x > 0 else 0."""
        return self._apply("relu", max(self.data, 0.0), (), (float(self.data > 0),))

    def max(self, other):
        """The larger of two values; on a tie the gradient goes to ``self``."""
        other = other if isinstance(other, Value) else Value(other)
        first = self.data >= other.data
        return self._apply("max", max(self.data, other.data), (other,),
                           (float(first), float(not first)))

    def topological_order(self):
        """All nodes this value depends on, each listed after its parents.

        An explicit stack replaces recursion: a recursive depth-first search
        needs one Python frame per node along the longest path, so a chain of
        a few thousand operations raises ``RecursionError``.
        """
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in reversed(node._parents) if p not in seen)
        return order

    def backward(self):
        """Add d(self)/d(node) to ``node.grad`` for every node of the graph.

        A node used more than once (``b = a + a``) receives one gradient from
        each use, and the chain rule says they add up.  Only when all of them
        have arrived may the node pass its total on to its own parents, so the
        nodes are visited in reverse topological order: every node after all
        the nodes that use it.  A naive recursion that passes gradients on as
        soon as they arrive would send partial sums (and revisit shared parts
        of the graph once per path).

        Gradients accumulate, as in PyTorch: each call adds this pass's
        gradients to ``.grad``, so calling ``backward()`` twice doubles every
        gradient.  Reset them first (``MLP.zero_grad()``, or set ``.grad = 0``).
        """
        pending = {self: 1.0}  # this pass's gradients, kept apart from .grad
        for node in reversed(self.topological_order()):
            upstream = pending.pop(node, 0.0)
            node.grad += upstream
            for parent, local in zip(node._parents, node._local_grads):
                pending[parent] = pending.get(parent, 0.0) + upstream * local


class Module:
    """Shared by Neuron, Layer and MLP: list and reset the parameters."""

    def parameters(self):
        """The trainable Values (weights and biases), in a fixed order."""
        return []

    def zero_grad(self):
        """Set the gradient of every parameter to 0."""
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """``activation(w . x + b)`` for an input list ``x`` of ``n_in`` numbers.

    ``activation`` is one of ``ACTIVATIONS``: "tanh" (default), "sigmoid", "relu"
    or "linear" (none). The weights ``w`` (a list of ``n_in`` Values) start uniform
    in [-1, 1), drawn from ``rng`` (a seed or a ``numpy.random.Generator``); the
    bias ``b`` starts at 0.
    """

    def __init__(self, n_in, activation="tanh", rng=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        rng = np.random.default_rng(rng)
        self.w = [Value(float(u), f"w{i}") for i, u in enumerate(rng.uniform(-1, 1, n_in))]
        self.b = Value(0.0, "b")
        self.activation = activation

    def __call__(self, x):
        """x: list of n_in numbers or Values -> one Value."""
        if len(x) != len(self.w):
            raise ValueError(f"this neuron takes {len(self.w)} inputs, got {len(x)}")
        z = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return z if self.activation == "linear" else getattr(z, self.activation)()

    def parameters(self):
        """The trainable Values (weights and biases), in a fixed order."""
        return self.w + [self.b]


class Layer(Module):
    """``n_out`` neurons reading the same ``n_in`` inputs; calling it returns a list."""

    def __init__(self, n_in, n_out, activation="tanh", rng=None):
        rng = np.random.default_rng(rng)
        self.neurons = [Neuron(n_in, activation, rng) for _ in range(n_out)]

    def __call__(self, x):
        """x: list of n_in numbers or Values -> list of n_out Values."""
        return [n(x) for n in self.neurons]

    def parameters(self):
        """The trainable Values (weights and biases), in a fixed order."""
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    """Layers of sizes ``sizes = [n_in, hidden..., n_out]``.

    Hidden layers use ``activation``, the last one ``out_activation`` (default
    "linear").  Calling the network returns a Value when ``n_out == 1`` and a list
    otherwise.  One ``rng`` draws every layer's weights in turn.
    """

    def __init__(self, sizes, activation="tanh", out_activation="linear", rng=None):
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least [n_in, n_out], got {sizes!r}")
        rng = np.random.default_rng(rng)
        acts = [activation] * (len(sizes) - 2) + [out_activation]
        self.layers = [Layer(a, b, act, rng) for a, b, act in zip(sizes, sizes[1:], acts)]

    def __call__(self, x):
        """x: list of sizes[0] numbers -> a Value if sizes[-1] == 1, else a list of sizes[-1]."""
        for layer in self.layers:
            x = layer(x)
        return x[0] if len(x) == 1 else x

    def parameters(self):
        """The trainable Values (weights and biases), in a fixed order."""
        return [p for layer in self.layers for p in layer.parameters()]


class Drawing:
    """A drawn graph: shows inline in Jupyter; ``save("g.svg")`` or ``.png``."""

    def __init__(self, figure):
        self.figure = figure

    def save(self, path):
        """Write the picture to ``path``; the format follows the suffix (.svg, .png, .pdf)."""
        self.figure.savefig(path, metadata={"Date": None})

    def _repr_svg_(self):
        """The SVG, the same bytes every time (no date, fixed ids), so notebooks can compare it."""
        import matplotlib

        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.hashsalt": "course.graph"}):
            self.figure.savefig(buffer, format="svg", metadata={"Date": None})
        return buffer.getvalue()


def draw(value):
    """Draw the graph below ``value``, inputs on the left, output on the right.

    Each value is a box (label, data, grad) with id ``value-i``, ``i`` its
    place in topological order; each operation is a circle with id ``op-i``
    (for the value it produces), one column to the left of its result.
    Columns count operations back from the output, so the picture reads like
    the forward pass; the gradients shown are those of the last ``backward()``.
    Returns a ``Drawing``.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch

    order = value.topological_order()
    column = {value: 0}  # right to left: each node just left of its first use
    for v in reversed(order):
        for p in v._parents:
            column[p] = min(column.get(p, 0), column[v] - 2)
    row, height = {}, {}
    for v in order:
        row[v] = height.get(column[v], 0)
        height[column[v]] = row[v] + 1
    dx, dy, w, h, r = 1.4, 1.1, 1.5, 0.8, 0.32  # spacing, box size, circle radius

    def xy(v, shift=0):
        return (column[v] + shift) * dx, (row[v] - (height[column[v]] - 1) / 2) * -dy

    width = -min(column.values()) * dx + w + 0.4
    tall = max(height.values()) * dy + 0.4
    fig = Figure(figsize=(0.9 * width, 0.9 * tall))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(w / 2 + 0.2 - width, w / 2 + 0.2)
    ax.set_ylim(-tall / 2, tall / 2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    arrow = {"arrowstyle": "->", "color": "0.35", "shrinkA": 0, "shrinkB": 0}
    for i, v in enumerate(order):
        x, y = xy(v)
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, gid=f"value-{i}",
                                    boxstyle="round,pad=0,rounding_size=0.1",
                                    facecolor="#dbe9f6", edgecolor="0.3"))
        text = f"data {v.data + 0.0:.4g}\ngrad {v.grad + 0.0:.4g}"  # + 0.0 turns -0 into 0
        ax.text(x, y, f"{v.label}\n{text}" if v.label else text,
                ha="center", va="center", fontsize=8)
        if v._parents:
            ox = xy(v, -1)[0]
            ax.add_patch(Circle((ox, y), r, gid=f"op-{i}", facecolor="#fbe3b5",
                                edgecolor="0.3"))
            ax.text(ox, y, v._op, ha="center", va="center", fontsize=8)
            ax.annotate("", (x - w / 2, y), (ox + r, y), arrowprops=arrow)
            for p in v._parents:
                px, py = xy(p)
                ax.annotate("", (ox - r, y), (px + w / 2, py), arrowprops=arrow)
    return Drawing(fig)
