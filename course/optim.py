"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and NAdam.

Each takes a list of ``nn.Parameter`` and, when ``step()`` is called, updates
every ``p.data`` in place from ``p.grad``, one parameter at a time: the array a
student holds (``W = layer.W.data``) stays the parameter and sees every update.
State (velocities, moments) is created per parameter the first time it is
needed, in ``optimizer.state[p]``. The update rules follow PyTorch's
documentation, so results can be compared with ``torch.optim`` number for number.
"""
import math
import numbers

from course.backend import namespace
from course.nn import Parameter


def _number(name, value, low=0.0, low_inclusive=True, high=None):
    """``value`` as a float, after checking it is a finite real number in range; else ValueError.

    Any real number is accepted (Python or NumPy: ``np.float32(0.1)``), but not
    a bool, NaN or infinity.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= low if low_inclusive else value > low)
    ok = ok and (high is None or value < high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high else "")
        raise ValueError(f"invalid {name}: {value!r} (must be a finite real number {bound})")
    return float(value)


class Optimizer:
    """Holds the parameters; subclasses implement ``step()``.

    Args:
        params: list of ``nn.Parameter`` (e.g. ``model.parameters()``); a
            parameter listed twice is updated once.
        lr: learning rate, >= 0.
    """

    def __init__(self, params, lr):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list; pass model.parameters()")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer expects course.nn.Parameter objects, got {type(p).__name__}")
        self.params = list(dict.fromkeys(params))  # each parameter once, in order
        self.lr = _number("learning rate lr", lr)
        self.state = {}  # parameter -> dict of its arrays, created on first use

    def zero_grad(self):
        """Set every parameter's gradient to zero (in place)."""
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        """Update every parameter once from its current ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} must define step()")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and weight decay.

    For each parameter p with gradient g, at every step::

        g = g + weight_decay * p                   # L2 regularisation
        v = momentum * v + g                       # v starts at g on the first step
        g = g + momentum * v  if nesterov else v   # (only when momentum > 0)
        p = p - lr * g

    This is PyTorch's convention. Two other ways of writing momentum give the
    same trajectory for the same lr and momentum:

    - Goodfellow, Bengio and Courville (Deep Learning, 8.3.2):
      ``v <- a v - e g; p <- p + v``. Its velocity is ``-lr`` times ours, so
      ``a = momentum`` and ``e = lr``.
    - Ruder (An overview of gradient descent optimization algorithms, 2016):
      ``v <- gamma v + alpha g; p <- p - v``. Its velocity is ``lr`` times
      ours, so ``gamma = momentum`` and ``alpha = lr``.
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
        self.momentum = _number("momentum", momentum, high=1.0)
        self.weight_decay = _number("weight_decay", weight_decay)
        if nesterov and self.momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.nesterov = bool(nesterov)

    def step(self):
        """Update every parameter once from its current ``.grad``."""
        for p in self.params:
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                if p in self.state:
                    v = self.state[p]["v"]
                    v *= self.momentum  # v = momentum * v + g, in place
                    v += g
                else:
                    v = namespace(g).asarray(g, copy=True)  # v starts at g
                    self.state[p] = {"v": v}
                g = g + self.momentum * v if self.nesterov else v
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015).

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
        self.betas = (_number("beta1", betas[0], high=1.0), _number("beta2", betas[1], high=1.0))
        self.eps = _number("eps", eps)
        self.weight_decay = _number("weight_decay", weight_decay)

    def step(self):
        """Update every parameter once from its current ``.grad``."""
        beta1, beta2 = self.betas
        for p in self.params:
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if p not in self.state:
                xp = namespace(g)
                self.state[p] = {"t": 0, "m": xp.zeros_like(g), "v": xp.zeros_like(g)}
            state = self.state[p]
            state["t"] += 1
            m, v = state["m"], state["v"]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * (g * g)
            p.data -= self._update(g, m, v, state["t"])

    def _update(self, g, m, v, t):
        """The step subtracted from p: lr * m_hat / (sqrt(v_hat) + eps).  g, m, v: p's shape."""
        beta1, beta2 = self.betas
        denom = namespace(v).sqrt(v / (1 - beta2**t)) + self.eps
        return (self.lr / (1 - beta1**t)) * (m / denom)


class NAdam(Adam):
    """Adam with Nesterov momentum (Dozat, 2016), in the form given by Ruder (2016).

    The same moments as Adam, but the step looks ahead with the momentum::

        p = p - lr / (sqrt(v_hat) + eps) * (beta1 * m_hat + (1 - beta1) * g / (1 - beta1^t))

    (PyTorch's ``NAdam`` adds a momentum-decay schedule, so its numbers differ.)
    Args as for ``Adam``.
    """

    def _update(self, g, m, v, t):
        """The step subtracted from p, looking ahead with the momentum.  g, m, v: p's shape."""
        beta1, beta2 = self.betas
        denom = namespace(v).sqrt(v / (1 - beta2**t)) + self.eps
        return (self.lr / (1 - beta1**t)) * (beta1 * m + (1 - beta1) * g) / denom
