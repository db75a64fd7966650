"""The contract every layer follows: ``Parameter`` and the ``Module`` base class.

A ``Parameter`` is a trainable array and its gradient. A ``Module`` computes
``out = m(x)`` forward and ``dx = m.backward(dout)`` backward, and finds its
parameters and sub-modules by looking at its attributes, so nothing needs to be
registered. ``course.nn`` builds every layer on these two classes and exports
them, so they are usually written ``nn.Parameter`` and ``nn.Module``.
"""
import contextlib

from course import backend
from course.backend import namespace


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
    """Base class: subclasses implement ``forward(x)`` and ``backward(dout)``.

    Parameters and sub-modules are found by looking at the attributes: a
    ``Parameter``, a ``Module``, or a list or tuple of them. Nothing needs to be
    registered, so a student's own module that holds a ``Dense`` just works.
    """

    training = True  # training mode (m.train()) or evaluation mode (m.eval())
    input_grad = True  # False: backward may skip dL/dx and return None

    def __call__(self, x):
        """out = m(x) is ``m.forward(x)``: x: (N, D) -> out: (N, M)."""
        return self.forward(x)

    def forward(self, x):
        """x: (N, D) -> out: (N, M); caches what ``backward`` needs."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(x)")

    def backward(self, dout):
        """dout = dL/dout: (N, M) -> dL/dx: (N, D); adds into each parameter's ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} must define backward(dout)")

    def _members(self):
        """The attributes that are Parameters or Modules, in order: (name, member) pairs."""
        for name, value in vars(self).items():
            items = value if isinstance(value, (list, tuple)) else [value]
            for i, item in enumerate(items):
                if isinstance(item, (Parameter, Module)):
                    yield (name if items is not value else f"{name}[{i}]"), item

    def children(self):
        """The modules held directly by this one (attributes, lists and tuples), in order."""
        return [m for _, m in self._members() if isinstance(m, Module)]

    def parameters(self):
        """Every Parameter of this module and of the modules inside it, each once, in order."""
        found = {}  # a dict keeps the order and drops repeats (a layer used twice)
        for _, member in self._members():
            for p in member.parameters() if isinstance(member, Module) else [member]:
                found[id(p)] = p
        return list(found.values())

    def zero_grad(self):
        """Set every parameter's ``.grad`` to 0 (in place, same shape)."""
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode=True):
        """Put this module and every module inside it in training mode (``mode=False``: evaluation).

        Returns the module. Layers such as dropout behave differently in the two modes.
        """
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode for this module and every module inside it; returns the module."""
        return self.train(False)

    def _check_backward(self, dout, out_shape):
        """Raise the errors every backward shares: no forward yet, or dout of the wrong shape.

        out_shape: the shape of the last forward's output (None when there was none).
        """
        if out_shape is None:
            raise RuntimeError(f"{self!r}.backward was called before forward: "
                               "run the forward pass first (out = m(x)), then backward")
        if tuple(dout.shape) != tuple(out_shape):
            raise ValueError(f"{self!r}.backward expects dout of shape {tuple(out_shape)}, "
                             f"the shape of its output, but got {tuple(dout.shape)}")

    def __repr__(self):
        inner = "".join(f"\n  ({name}): " + repr(m).replace("\n", "\n  ")
                        for name, m in self._members() if isinstance(m, Module))
        return f"{type(self).__name__}({inner}\n)" if inner else f"{type(self).__name__}()"

    def to(self, device):
        """Move the parameters to ``"cpu"``, ``"gpu"``, an array-API namespace or a device; returns self.

        device: ``"cpu"`` (NumPy), ``"gpu"`` (CuPy), an array namespace such as
        ``array_api_strict`` (its default device), or a device object of the
        parameters' own namespace (moved with ``x.to_device(device)``).
        """
        if isinstance(device, str):
            if device not in ("cpu", "gpu"):
                raise ValueError(f"device must be 'cpu', 'gpu', an array namespace or a device, "
                                 f"got {device!r}")
            move = backend.to_numpy if device == "cpu" else backend._cupy().asarray
        elif hasattr(device, "asarray"):
            move = device.asarray
        else:
            def move(x):
                return x.to_device(device)
        for p in self.parameters():
            p.data = move(p.data)
            p.grad = move(p.grad)
        return self


@contextlib.contextmanager
def training(model):
    """``with training(model):`` the model is in training mode, with ``input_grad`` False.

    The first layer needs no gradient with respect to the data, so its backward skips
    that product. When the block ends (by an error too), the model's mode and flag are
    what they were before. ``evaluate`` switches to evaluation mode inside, and back.
    """
    was_training, input_grad = model.training, model.input_grad
    model.train()
    model.input_grad = False
    try:
        yield model
    finally:
        model.train(was_training)
        model.input_grad = input_grad
