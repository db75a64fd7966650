"""Data for the course: logic gates, the HH19 ten points, toy 2-D sets,
mini-batches, MNIST made ready for training, a (stratified) train/validation
split, and randomly shifted images for data augmentation.

Shapes follow the library's batch-first convention: inputs ``X: (N, D)``,
targets ``y: (N,)`` integer labels or ``(N, K)`` one-hot rows.

The MNIST loader lives in ``course.mnist``; its public names are available
here too (``data.load_mnist``, ``data.fetch_mnist``, ``data.mnist_status``,
``data.MNISTError``, ...), so lessons need only ``from course import data``.
"""
import numpy as np

from course import backend, losses
from course.mnist import (  # noqa: F401 - re-exported: data.load_mnist etc.
    MIRRORS,
    MNIST_FILES,
    MNISTError,
    fetch_mnist,
    load_mnist,
    mnist_dir,
    mnist_status,
    parse_idx,
)

# --------------------------------------------------------------- toy sets ---

_GATES = {
    "and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0],
    "nor": [1, 0, 0, 0], "xor": [0, 1, 1, 0], "xnor": [1, 0, 0, 1],
}


def logic_gate(name):
    """Truth table of a two-input logic gate.

    Returns X: (4, 2) float64, the inputs 00, 01, 10, 11 in that order,
    and y: (4, 1) float64, the gate's output for each row.
    """
    key = str(name).lower()
    if key not in _GATES:
        raise ValueError(f"unknown logic gate {name!r}; choose one of "
                         f"{', '.join(_GATES)}")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array(_GATES[key], dtype=np.float64).reshape(4, 1)
    return X, y


def hh19(one_hot=True):
    """The ten labelled points of the Higham & Higham (2019) example.

    Returns X: (10, 2) float64, point i at (x1[i], x2[i]) in [0, 1]^2, and
    y: (10, 2) float64 one-hot targets, one row per point: [1, 0] for the
    first five points (class 0, circles) and [0, 1] for the last five (class
    1, crosses). This is the transpose of the paper's 2 x 10 matrix of column
    targets. With ``one_hot=False``, y: (10,) int64 holds the class numbers.
    """
    x1 = [0.1, 0.3, 0.1, 0.6, 0.4, 0.6, 0.5, 0.9, 0.4, 0.7]
    x2 = [0.1, 0.4, 0.5, 0.9, 0.2, 0.3, 0.6, 0.2, 0.4, 0.6]
    X = np.column_stack([x1, x2]).astype(np.float64)
    labels = np.repeat(np.arange(2), 5)
    return X, (losses.one_hot(labels, 2) if one_hot else labels)


def _counts(n, k):
    """Split n samples over k classes as evenly as possible: (k,) ints."""
    if n < k or k < 1:
        raise ValueError(f"need at least one sample per class, got n={n}, "
                         f"classes={k}")
    return np.full(k, n // k) + (np.arange(k) < n % k)


def _shuffled(X, y, rng):
    """X: (N, D) and y: (N,) with their rows in one random order drawn from ``rng``."""
    order = rng.permutation(len(y))
    return X[order], y[order]


def spirals(n=300, classes=3, noise=0.2, rng=0):
    """Interleaved spiral arms, one per class.

    Returns X: (n, 2) float64 and y: (n,) int64 in shuffled order. ``rng`` is
    a seed or a ``numpy.random.Generator``; the same seed gives the same set.
    """
    rng = np.random.default_rng(rng)
    X, y = [], []
    for k, m in enumerate(_counts(n, classes)):
        r = np.linspace(0.0, 1.0, m)
        theta = (np.linspace(0.0, 4.0, m) + 2 * np.pi * k / classes
                 + noise * rng.standard_normal(m))
        X.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        y.append(np.full(m, k))
    return _shuffled(np.concatenate(X), np.concatenate(y), rng)


def moons(n=200, noise=0.1, rng=0):
    """Two interleaving half circles (class 0 on top, class 1 below).

    Returns X: (n, 2) float64 and y: (n,) int64 in shuffled order.
    """
    rng = np.random.default_rng(rng)
    m0, m1 = _counts(n, 2)
    t0, t1 = np.linspace(0, np.pi, m0), np.linspace(0, np.pi, m1)
    X = np.concatenate([np.column_stack([np.cos(t0), np.sin(t0)]),
                        np.column_stack([1 - np.cos(t1), 0.5 - np.sin(t1)])])
    X += noise * rng.standard_normal(X.shape)
    return _shuffled(X, np.repeat([0, 1], [m0, m1]), rng)


def circles(n=200, noise=0.05, factor=0.5, rng=0):
    """A circle of class 0 around a smaller one (radius ``factor``), class 1.

    Returns X: (n, 2) float64 and y: (n,) int64 in shuffled order.
    """
    if not 0 < factor < 1:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    rng = np.random.default_rng(rng)
    m0, m1 = _counts(n, 2)
    t0 = np.linspace(0, 2 * np.pi, m0, endpoint=False)
    t1 = np.linspace(0, 2 * np.pi, m1, endpoint=False)
    X = np.concatenate([np.column_stack([np.cos(t0), np.sin(t0)]),
                        factor * np.column_stack([np.cos(t1), np.sin(t1)])])
    X += noise * rng.standard_normal(X.shape)
    return _shuffled(X, np.repeat([0, 1], [m0, m1]), rng)


def blobs(n=300, centers=3, std=1.0, rng=0):
    """Gaussian blobs around ``centers``: a count (drawn in [-5, 5]^2) or
    an array C: (K, 2) of centres.

    Returns X: (n, 2) float64 and y: (n,) int64 in shuffled order.
    """
    rng = np.random.default_rng(rng)
    if np.ndim(centers) == 0:
        centers = rng.uniform(-5.0, 5.0, size=(int(centers), 2))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2:
        raise ValueError(f"centers must have shape (K, 2), "
                         f"got {centers.shape}")
    y = np.repeat(np.arange(len(centers)), _counts(n, len(centers)))
    X = centers[y] + std * rng.standard_normal((n, 2))
    return _shuffled(X, y, rng)


# ------------------------------------------------------------ mini-batches ---

def batches(X, y, batch_size, shuffle=True, rng=None):
    """An iterator over mini-batches ``(X_batch, y_batch)``, each example once.

    X: (N, ...) and y: (N, ...); each X_batch: (B, ...), B = batch_size, the
    last batch holding what is left. ``batch_size=None`` gives one full batch.
    Shuffling permutes an index array, so only one batch is copied at a time;
    ``rng`` is a seed or a ``numpy.random.Generator``.

    Any array-API arrays work (NumPy, CuPy, array_api_strict, ...): the batches
    stay in the arrays' namespace and on their device. The order is drawn with
    NumPy, so a seed gives the same batches whatever the arrays are.
    """
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X and y hold different numbers of examples: "
                         f"X {tuple(X.shape)}, y {tuple(y.shape)}")
    if batch_size is None:
        batch_size = max(n, 1)
    is_int = isinstance(batch_size, (int, np.integer))
    if not is_int or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, "
                         f"got {batch_size!r}")
    order = np.random.default_rng(rng).permutation(n) if shuffle else None
    return _batches(X, y, batch_size, order)


def _take(a, order):
    """A function ``rows(start, stop)`` -> ``a[order[start:stop]]``: (stop - start, ...).

    NumPy arrays are indexed with the NumPy ``order: (N,)`` directly; other
    arrays get a copy of ``order`` in their namespace, on their device, made
    once per epoch, and ``take`` along axis 0.
    """
    if isinstance(a, np.ndarray):
        return lambda start, stop: a[order[start:stop]]
    xp = backend.namespace(a)
    index = xp.asarray(order, device=a.device)
    return lambda start, stop: xp.take(a, index[start:stop], axis=0)


def _batches(X, y, batch_size, order):
    """The generator behind ``batches``; ``order: (N,)`` NumPy ints, or None for in order."""
    numpy = isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
    if numpy and batch_size == 1 and order is not None:  # per-sample SGD: one-row views
        for i in order.tolist():
            yield X[i:i + 1], y[i:i + 1]
        return
    n = X.shape[0]
    # stops never pass n and "..." names the other axes: the array API requires both
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if order is None:  # in order: slices, which are views where the namespace has them
        for start, stop in bounds:
            yield X[start:stop, ...], y[start:stop, ...]
    else:
        X_rows, y_rows = _take(X, order), _take(y, order)
        for start, stop in bounds:
            yield X_rows(start, stop), y_rows(start, stop)


def prepare(X, y, dtype=np.float32, one_hot=False, validation=0):
    """Turn MNIST-style uint8 images into training-ready arrays.

    X: (N, 28, 28) uint8 (any (N, ...) uint8 works), y: (N,) ints.
    Returns X: (N, 784) of ``dtype`` scaled to [0, 1], and y: (N,) int64, or
    (N, 10) of ``dtype`` with ``one_hot=True``. The float array is allocated
    once and filled in place, so memory holds a single float copy.

    With ``validation`` (a count, or a fraction in (0, 1)) the last examples
    are held out and the result is ``(X_train, y_train), (X_val, y_val)``;
    these are views of the same arrays, not copies.
    """
    X = np.asarray(X)
    if X.dtype != np.uint8:
        raise ValueError(f"prepare expects uint8 images as load_mnist returns "
                         f"them, got dtype {X.dtype}")
    n = len(X)
    out = np.empty((n, X[0].size if n else 0), dtype=dtype)
    np.divide(X.reshape(n, -1), 255, out=out, dtype=dtype)
    y = np.asarray(y)
    y = losses.one_hot(y, 10, dtype) if one_hot else y.astype(np.int64)
    if not validation:
        return out, y
    if 0 < validation < 1:
        n_val = round(validation * n)
    else:
        n_val = int(validation)
    if not 0 < n_val < n:
        raise ValueError(f"validation must leave examples on both sides, got "
                         f"{validation} of {n}")
    return (out[:-n_val], y[:-n_val]), (out[-n_val:], y[-n_val:])


# ------------------------------------------------- validation and augmentation ---

def train_val_split(X, y, val_fraction=0.1, seed=0):
    """Split (X, y) at random into a training and a validation set.

    X: (N, ...) and y: (N, ...). Returns ``(X_train, y_train), (X_val, y_val)``,
    new arrays with N - V and V rows, each in a random order. With integer
    class labels y: (N,) the split is stratified: each class with n_c examples
    gives round(val_fraction * n_c) of them to validation (halves rounding up),
    so both sides keep the class proportions. Otherwise V = round(val_fraction * N).
    The same ``seed`` (or ``numpy.random.Generator``) gives the same split.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X and y hold different numbers of examples: "
                         f"X {tuple(X.shape)}, y {tuple(y.shape)}")
    rng = np.random.default_rng(seed)
    labels = backend.to_numpy(y)
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    else:
        groups = [np.arange(n)]
    val, rest = [], []
    for rows in groups:
        rows = rng.permutation(rows)
        k = int(np.floor(val_fraction * len(rows) + 0.5))
        val.append(rows[:k])
        rest.append(rows[k:])
    val, rest = rng.permutation(np.concatenate(val)), rng.permutation(np.concatenate(rest))
    if len(val) == 0 or len(rest) == 0:
        raise ValueError(f"val_fraction={val_fraction} of {n} examples leaves "
                         f"{len(rest)} for training and {len(val)} for validation; "
                         "choose a fraction that leaves examples on both sides")
    def rows(a, index):  # a[index] in a's namespace, on its device
        return _take(a, index)(0, len(index))

    return (rows(X, rest), rows(y, rest)), (rows(X, val), rows(y, val))


def augment_shift(X, max_shift=2, rng=None):
    """Randomly translated copies of images: X: (N, 28, 28) or rows (N, 784) -> same shape, same dtype.

    Each image moves by (dy, dx), whole pixels drawn uniformly from
    [-max_shift, max_shift] (dy > 0 moves it down, dx > 0 right), as
    ``rng.integers(-max_shift, max_shift + 1, size=(N, 2))``: column 0 holds
    dy, column 1 dx. Nothing wraps around: pixels moved out are lost, and
    those moved in are 0 (background). Rows of 784 are taken as 28 x 28
    images. Any (N, H, W) images work; NumPy arrays only (augment before
    moving data to a GPU). ``rng``: a seed or ``numpy.random.Generator``.
    """
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[1] == 28 * 28:
        images = X.reshape(-1, 28, 28)
    elif X.ndim == 3:
        images = X
    else:
        raise ValueError(f"augment_shift expects images (N, 28, 28) or rows (N, 784), "
                         f"got shape {X.shape}")
    if int(max_shift) != max_shift or max_shift < 0:
        raise ValueError(f"max_shift must be a whole number >= 0, got {max_shift!r}")
    max_shift = int(max_shift)
    shifts = np.random.default_rng(rng).integers(-max_shift, max_shift + 1, size=(len(images), 2))
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    for dy, dx in np.unique(shifts, axis=0):  # at most (2 max_shift + 1)^2 groups
        chosen = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        dy, dx = int(np.clip(dy, -h, h)), int(np.clip(dx, -w, w))  # a shift past the edge: all 0
        to_y, from_y = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
        to_x, from_x = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
        out[chosen, to_y, to_x] = images[chosen, from_y, from_x]
    return out.reshape(X.shape)
