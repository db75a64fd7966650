"""Layers that help a network generalise: ``Dropout`` and ``BatchNorm1d``.

Both behave differently in training mode (``m.train()``) and in evaluation mode
(``m.eval()``), which is why every module has a ``training`` flag:

- ``Dropout`` drops random activations while training and does nothing at
  evaluation (Srivastava et al., 2014, "Dropout: a simple way to prevent neural
  networks from overfitting").
- ``BatchNorm1d`` normalises with the statistics of the mini-batch while
  training, and with running averages of them at evaluation (Ioffe & Szegedy,
  2015, "Batch normalization"). Its running statistics follow PyTorch's
  ``torch.nn.BatchNorm1d`` exactly.

Both are exported by ``course.nn``: ``nn.Dropout(0.5)``, ``nn.BatchNorm1d(64)``.
"""
import numpy as np

from course import backend
from course.backend import namespace
from course.module import Module, Parameter


def _like(a, x):
    """The NumPy array ``a`` moved to the namespace and device of the array ``x``."""
    xp = namespace(x)
    return a if xp is np else xp.asarray(a, device=x.device)


class Dropout(Module):
    """Inverted dropout: out = x * mask / (1 - p) in training mode, out = x in evaluation mode.

    Each entry of ``mask`` is 0 with probability p and 1 otherwise, drawn anew
    in every training forward. Dividing by the keep probability 1 - p keeps
    the expected value of every activation, E[out] = x, so evaluation needs
    no rescaling. (This is ``torch.nn.Dropout``'s formula.)

    Args:
        p: the probability of dropping an activation, in [0, 1).
        rng: seed or ``numpy.random.Generator``: the same seed gives the same masks.

    Shapes: x: any shape -> out: same shape; mask: same shape as x (0s and 1s,
    in x's dtype, namespace and device; None in evaluation mode).
    """

    def __init__(self, p=0.5, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout needs p in [0, 1), got {p}: p is the probability of "
                             "dropping an activation, and p = 1 would drop all of them and "
                             "divide the rest by 1 - p = 0")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)
        self.mask = None
        self.shape = None  # the last forward's input shape

    def __repr__(self):
        return f"Dropout(p={self.p})"

    def forward(self, x):
        """x: any shape -> out: same shape; in training mode draws and caches a new ``mask``."""
        self.shape = tuple(x.shape)
        if not self.training:
            self.mask = None
            return x
        xp = namespace(x)
        keep = self.rng.random(self.shape) >= self.p  # NumPy draws: the same on every device
        self.mask = xp.astype(_like(keep, x), x.dtype)
        return x * self.mask / (1.0 - self.p)

    def backward(self, dout):
        """dout: shape of x -> dx: same shape, dout * mask / (1 - p) (dout itself in evaluation mode).

        The mask is the one drawn by the last forward, so the dropped entries get no gradient.
        """
        self._check_backward(dout, self.shape)
        if not self.input_grad:
            return None
        return dout if self.mask is None else dout * self.mask / (1.0 - self.p)


class BatchNorm1d(Module):
    """Batch normalisation of each feature: out = gamma * (x - mean) / sqrt(var + eps) + beta.

    In training mode, mean and var are the batch's, per feature (var the biased
    one, dividing by N), and the running estimates are updated as PyTorch does:

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * N / (N - 1)

    (the running variance uses the unbiased estimate, dividing by N - 1). In
    evaluation mode, mean and var are ``running_mean`` and ``running_var``, so
    each example's output depends on that example alone.

    Args:
        num_features: features per example (D).
        momentum: weight of the newest batch in the running estimates, in [0, 1].
        eps: added to the variance so that a constant feature does not divide by 0.
        dtype: float64 (default) or float32, of the parameters and running statistics.

    Shapes: x: (N, D) -> out: (N, D); gamma, beta (Parameters, starting at 1 and
    0), running_mean, running_var (plain arrays, starting at 0 and 1): (D,).
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype=np.float64):
        if int(num_features) < 1:
            raise ValueError(f"BatchNorm1d needs num_features >= 1, got {num_features}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm1d needs momentum in [0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"BatchNorm1d needs eps > 0, got {eps}")
        self.num_features, self.momentum, self.eps = int(num_features), float(momentum), float(eps)
        self.gamma = Parameter(backend.asarray(np.ones(self.num_features, dtype=dtype)), "gamma")
        self.beta = Parameter(backend.asarray(np.zeros(self.num_features, dtype=dtype)), "beta")
        self.running_mean = backend.asarray(np.zeros(self.num_features, dtype=dtype))
        self.running_var = backend.asarray(np.ones(self.num_features, dtype=dtype))
        self.cache = None  # (xhat: (N, D), std: (D,), batch_stats: bool) from the last forward

    def __repr__(self):
        extra = "" if self.momentum == 0.1 else f", momentum={self.momentum}"
        extra += "" if self.eps == 1e-5 else f", eps={self.eps}"
        return f"BatchNorm1d({self.num_features}{extra})"

    def to(self, device):
        """Move gamma, beta and the running statistics (see ``Module.to``); returns self."""
        super().to(device)
        like = self.gamma.data
        self.running_mean = _like(backend.to_numpy(self.running_mean), like)
        self.running_var = _like(backend.to_numpy(self.running_var), like)
        return self

    def forward(self, x):
        """x: (N, D) -> out: (N, D); in training mode also updates the running statistics."""
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.num_features}) "
                             f"but got {tuple(x.shape)}")
        if x.dtype != self.gamma.data.dtype:
            raise TypeError(f"{self!r} has {self.gamma.data.dtype} parameters but the input is "
                            f"{x.dtype}; convert the input first, e.g. "
                            f"X.astype(np.{self.gamma.data.dtype})")
        xp, n = namespace(x), x.shape[0]
        if self.training:
            if n < 2:
                raise ValueError(
                    f"{self!r} in training mode needs more than 1 example per batch to estimate "
                    f"a variance, got input of shape {tuple(x.shape)} (PyTorch: 'Expected more "
                    "than 1 value per channel when training'); use batches of 2 or more (a last "
                    "mini-batch of 1 row comes from a batch_size that leaves 1 over), or call "
                    "model.eval() to use the running statistics")
            mean = xp.mean(x, axis=0)
            var = xp.mean((x - mean) ** 2, axis=0)  # biased: divides by N
            m = self.momentum
            self.running_mean[...] = (1 - m) * self.running_mean + m * mean
            self.running_var[...] = (1 - m) * self.running_var + m * var * (n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        std = xp.sqrt(var + self.eps)
        xhat = (x - mean) / std
        self.cache = (xhat, std, self.training)
        return self.gamma.data * xhat + self.beta.data

    def backward(self, dout):
        """dout: (N, D) -> dx: (N, D); adds dgamma = sum_rows(dout * xhat), dbeta = sum_rows(dout): (D,).

        With dxhat = dout * gamma, evaluation mode is a fixed affine map per
        feature, so dx = dxhat / std. In training mode mean and var depend on
        every row of x too; following those paths back and collecting terms
        (sums over the N rows, per feature) gives

            dx = (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)) / (N * std)

        The second term is the path through the mean, the third the path
        through the variance. std = sqrt(var + eps): (D,).
        """
        self._check_backward(dout, None if self.cache is None else self.cache[0].shape)
        xhat, std, batch_stats = self.cache
        xp, n = namespace(dout), dout.shape[0]
        self.gamma.grad += xp.sum(dout * xhat, axis=0)
        self.beta.grad += xp.sum(dout, axis=0)
        if not self.input_grad:
            return None
        dxhat = dout * self.gamma.data
        if not batch_stats:
            return dxhat / std
        return (n * dxhat - xp.sum(dxhat, axis=0)
                - xhat * xp.sum(dxhat * xhat, axis=0)) / (n * std)
