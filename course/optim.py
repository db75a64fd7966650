"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and NAdam.

Each takes a list of ``nn.Parameter`` and updates ``p.data`` in place from
``p.grad`` when ``step()`` is called. State (velocities, moments) is created per
parameter the first time it is needed. The update rules follow PyTorch's
documentation, so results can be compared with ``torch.optim`` number for number.
"""
import math

import numpy as np

from course.backend import namespace
from course.nn import Parameter


def _check(name, value, low=0.0, low_inclusive=True, high=None):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= low if low_inclusive else value > low)
    ok = ok and (high is None or value < high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high else "")
        raise ValueError(f"invalid {name}: {value!r} (must be a finite number {bound})")


class Optimizer:
    """Holds the parameters; subclasses implement ``step()``.

    On the CPU, when all parameters share a dtype, they are gathered into one
    flat array (and their gradients into another): each ``p.data`` and
    ``p.grad`` becomes a view into it. An update is then a handful of array
    operations in total instead of a handful per parameter, which matters
    when the arrays are tiny (per-sample SGD on a small network). Values are
    unchanged. Read weights through the model (``model[0].W.data``) after
    creating the optimizer; if you assign a new array to ``p.data`` or
    ``p.grad``, the optimizer copies it in at its next step.
    """

    def __init__(self, params, lr):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list; pass model.parameters()")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer expects course.nn.Parameter objects, got {type(p).__name__}")
        self.params = list(dict.fromkeys(params))  # each parameter once, in order
        _check("learning rate lr", lr)
        self.lr = lr
        self.state = {}  # key -> dict of arrays, created on first use
        self._flat = None
        if (all(isinstance(p.data, np.ndarray) for p in self.params)
                and len({p.data.dtype for p in self.params}) == 1):
            self._gather()

    def _gather(self):
        """Copy every parameter into one flat data array and one flat grad array."""
        dtype = self.params[0].data.dtype
        total = sum(p.data.size for p in self.params)
        self._flat = (np.empty(total, dtype=dtype), np.empty(total, dtype=dtype))
        self._flat_groups = [(*self._flat, "flat")]  # what _groups returns, built once
        self._views, start = [], 0
        for p in self.params:
            part = slice(start, start + p.data.size)
            start = part.stop
            self._views.append([p, part, None, None])
        self._link()

    def _link(self):
        """Make each p.data / p.grad a view of the flat arrays again, copying values in."""
        for entry in self._views:
            p, part, data_view, grad_view = entry
            if p.data is data_view and p.grad is grad_view:
                continue  # the usual case: nothing was reassigned
            for i, (name, flat) in enumerate((("data", self._flat[0]), ("grad", self._flat[1]))):
                array = getattr(p, name)
                if array is entry[2 + i]:
                    continue
                if not isinstance(array, np.ndarray) or array.size != part.stop - part.start:
                    raise RuntimeError(
                        f"parameter {p!r} changed size or device after the optimizer was "
                        "created; create the optimizer again"
                    )
                flat[part] = array.reshape(-1)
                entry[2 + i] = flat[part].reshape(array.shape)
                setattr(p, name, entry[2 + i])

    def _groups(self):
        """(data, grad, state key) triples to update: one flat pair, or one per parameter."""
        if self._flat is None:
            return [(p.data, p.grad, id(p)) for p in self.params]
        self._link()
        return self._flat_groups

    def zero_grad(self):
        """Set every parameter's gradient to zero."""
        for _, grad, _ in self._groups():
            grad[...] = 0

    @staticmethod
    def _grad(data, grad, weight_decay):
        """The gradient with L2 weight decay folded in: g = grad + wd * p."""
        return grad + weight_decay * data if weight_decay else grad


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    For each parameter p with gradient g, at every step::

        g = g + weight_decay * p                   # L2 regularisation
        v = momentum * v + g                       # v starts at g on the first step
        g = g + momentum * v  if nesterov else v   # (only when momentum > 0)
        p = p - lr * g

    This is PyTorch's convention. The seeds write momentum two other ways, and
    both give the same trajectory for the same lr and momentum:

    - seed 004 (Goodfellow et al.): ``v <- a v - e g; p <- p + v``. Its velocity
      is ``-lr`` times ours, so ``a = momentum`` and ``e = lr``.
    - seed 004 (Ruder): ``v <- gamma v + alpha g; p <- p - v``. Its velocity is
      ``lr`` times ours, so ``gamma = momentum`` and ``alpha = lr``.
    (With a learning rate that changes during training the three differ slightly.)

    Args:
        params: list of ``nn.Parameter`` (e.g. ``model.parameters()``).
        lr: learning rate, >= 0.
        momentum: momentum factor in [0, 1), default 0 (plain SGD).
        nesterov: use Nesterov momentum (needs momentum > 0), default False.
        weight_decay: L2 penalty factor, >= 0, default 0.
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        _check("momentum", momentum, high=1.0)
        _check("weight_decay", weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def step(self):
        """Update every parameter once from its current ``.grad``."""
        for data, grad, key in self._groups():
            g = self._grad(data, grad, self.weight_decay)
            if self.momentum:
                state = self.state.get(key)
                if state is None:
                    v = namespace(g).asarray(g, copy=True)
                    self.state[key] = {"v": v}
                else:
                    v = state["v"]
                    v *= self.momentum
                    v += g
                g = g + self.momentum * v if self.nesterov else v
            data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), the algorithm box of seeds 002 and 004.

    For each parameter p with gradient g, with m = v = 0 and t = 0 at the start::

        t = t + 1
        g = g + weight_decay * p          # optional L2 regularisation
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t)         # bias correction: m and v start at 0
        v_hat = v / (1 - beta2^t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Args:
        params: list of ``nn.Parameter``.
        lr: step size, default 1e-3.
        betas: decay rates (beta1, beta2), each in [0, 1), default (0.9, 0.999).
        eps: added to the denominator for stability, default 1e-8.
        weight_decay: L2 penalty factor, default 0.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check("beta1", betas[0], high=1.0)
        _check("beta2", betas[1], high=1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay

    def _moments(self, key, g):
        """Update and return (t, m, v) for the parameter (or flat group) ``key``."""
        xp = namespace(g)
        state = self.state.get(key)
        if state is None:
            state = self.state[key] = {"t": 0, "m": xp.zeros_like(g), "v": xp.zeros_like(g)}
        beta1, beta2 = self.betas
        state["t"] += 1
        m, v = state["m"], state["v"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        return state["t"], m, v

    def step(self):
        """Update every parameter once from its current ``.grad``."""
        beta1, beta2 = self.betas
        for data, grad, key in self._groups():
            g = self._grad(data, grad, self.weight_decay)
            t, m, v = self._moments(key, g)
            xp = namespace(g)
            step_size = self.lr / (1 - beta1**t)
            denom = xp.sqrt(v / (1 - beta2**t)) + self.eps
            data -= step_size * (m / denom)


class NAdam(Adam):
    """Adam with Nesterov momentum (Dozat, 2016), in the form given by Ruder (2016).

    The same moments as Adam, but the step looks ahead with the momentum::

        p = p - lr / (sqrt(v_hat) + eps) * (beta1 * m_hat + (1 - beta1) * g / (1 - beta1^t))

    (PyTorch's ``NAdam`` adds a momentum-decay schedule, so its numbers differ.)
    Args as for ``Adam``.
    """

    def step(self):
        beta1, beta2 = self.betas
        for data, grad, key in self._groups():
            g = self._grad(data, grad, self.weight_decay)
            t, m, v = self._moments(key, g)
            xp = namespace(g)
            denom = xp.sqrt(v / (1 - beta2**t)) + self.eps
            data -= (self.lr / (1 - beta1**t)) * (beta1 * m + (1 - beta1) * g) / denom
