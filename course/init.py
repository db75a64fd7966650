"""Weight initialisation.

Every function takes ``shape = (n_in, n_out)`` (our dense layers' ``W`` layout),
an ``rng`` (a seed, ``None`` or a ``numpy.random.Generator``) and a ``dtype``,
and returns a NumPy array of that shape. The same seed gives the same array.

| name | distribution | why |
| --- | --- | --- |
| ``zeros`` | all 0 | shows the symmetry problem: hidden units stay identical |
| ``uniform`` | U(-a, a) | the simplest way to break symmetry |
| ``normal`` | N(0, std^2) | small random weights |
| ``xavier`` | U(-a, a), a = sqrt(6 / (n_in + n_out)) | for tanh and sigmoid (Glorot & Bengio 2010) |
| ``xavier_normal`` | N(0, 2 / (n_in + n_out)) | the same, normally distributed |
| ``he`` | N(0, 2 / n_in) | for ReLU, which zeroes half its inputs (He et al. 2015) |
| ``he_uniform`` | U(-a, a), a = sqrt(6 / n_in) | the same, uniformly distributed |

Xavier and He choose the spread so that the variance of the signals (forward)
and of the gradients (backward) stays about the same from layer to layer.
"""
import math

import numpy as np


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def zeros(shape, rng=None, dtype=np.float64):
    """All zeros.  shape: (n_in, n_out) -> W: (n_in, n_out); ``rng`` is ignored."""
    return np.zeros(shape, dtype=dtype)


def uniform(shape, rng=None, dtype=np.float64, a=0.05):
    """Uniform in [-a, a), a >= 0 (default 0.05).  shape: (n_in, n_out) -> W: (n_in, n_out)."""
    if a < 0:
        raise ValueError(f"uniform: the bound a must be >= 0, got {a}")
    return _rng(rng).uniform(-a, a, size=shape).astype(dtype)


def normal(shape, rng=None, dtype=np.float64, std=0.01):
    """Normal, mean 0 and standard deviation ``std`` >= 0 (default 0.01).

    shape: (n_in, n_out) -> W: (n_in, n_out).
    """
    if std < 0:
        raise ValueError(f"normal: std must be >= 0, got {std}")
    return (_rng(rng).standard_normal(size=shape) * std).astype(dtype)


def _fans(shape):
    if len(shape) != 2:
        raise ValueError(f"expected a weight shape (n_in, n_out), got {tuple(shape)}")
    return shape[0], shape[1]


def xavier(shape, rng=None, dtype=np.float64):
    """Glorot/Xavier uniform, U(-a, a) with a = sqrt(6 / (n_in + n_out)).

    shape: (n_in, n_out) -> W: (n_in, n_out).
    """
    n_in, n_out = _fans(shape)
    return uniform(shape, rng, dtype, a=math.sqrt(6.0 / (n_in + n_out)))


def xavier_normal(shape, rng=None, dtype=np.float64):
    """Glorot/Xavier normal, std = sqrt(2 / (n_in + n_out)).

    shape: (n_in, n_out) -> W: (n_in, n_out).
    """
    n_in, n_out = _fans(shape)
    return normal(shape, rng, dtype, std=math.sqrt(2.0 / (n_in + n_out)))


def he(shape, rng=None, dtype=np.float64):
    """He/Kaiming normal, std = sqrt(2 / n_in).  shape: (n_in, n_out) -> W: (n_in, n_out)."""
    n_in, _ = _fans(shape)
    return normal(shape, rng, dtype, std=math.sqrt(2.0 / n_in))


def he_uniform(shape, rng=None, dtype=np.float64):
    """He/Kaiming uniform, U(-a, a) with a = sqrt(6 / n_in).

    shape: (n_in, n_out) -> W: (n_in, n_out).
    """
    n_in, _ = _fans(shape)
    return uniform(shape, rng, dtype, a=math.sqrt(6.0 / n_in))


INITIALIZERS = {
    "zeros": zeros,
    "uniform": uniform,
    "normal": normal,
    "xavier": xavier,
    "xavier_normal": xavier_normal,
    "he": he,
    "he_uniform": he_uniform,
}


def get(init):
    """The initialiser named ``init`` (a key of ``INITIALIZERS``), or ``init`` itself if callable.

    A callable must be ``f(shape, rng, dtype) -> W: shape``. An unknown name raises
    ``ValueError`` listing the known ones.
    """
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown init {init!r}; choose one of {sorted(INITIALIZERS)} or pass a "
            "function f(shape, rng, dtype)"
        ) from None
