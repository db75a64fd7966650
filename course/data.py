"""Data for the course: logic gates, the HH19 ten points, toy 2-D sets, MNIST.

Shapes follow the library's batch-first convention: inputs ``X: (N, D)``,
targets ``y: (N,)`` integer labels or ``(N, K)`` one-hot rows.

MNIST comes as four IDX files. ``load_mnist`` looks for them, gzipped
(``*-ubyte.gz``) or not, in the first of these folders:

1. the ``data_dir`` argument;
2. the ``COURSE_DATA_DIR`` environment variable;
3. the user cache, ``$XDG_CACHE_HOME/course/mnist``, which is
   ``~/.cache/course/mnist`` when XDG_CACHE_HOME is not set.

Missing files are downloaded from public mirrors. Every file is checked
against the SHA-256 of its *uncompressed* bytes, so any faithful gzip passes,
and a download is renamed into place only after it has been verified.
"""
import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from course import losses

# name -> (file name without .gz, SHA-256 of the uncompressed bytes)
MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
TIMEOUT = 5.0  # seconds to wait for a mirror to connect or send more bytes


def _how_to_provide():
    names = ", ".join(f"{name}.gz" for name, _ in MNIST_FILES.values())
    return (f"To provide the files yourself, put {names} (gzipped or not) in "
            f"a folder DIR, then either\n"
            f"  - set the environment variable COURSE_DATA_DIR=DIR, or\n"
            f"  - call load_mnist(data_dir=DIR), or\n"
            f"  - run `course data mnist --dir DIR` on a machine with "
            f"internet access and copy DIR across.")


class MNISTError(OSError):
    """MNIST files are missing, corrupted or could not be downloaded."""


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
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X and y hold different numbers of examples: "
                         f"X {np.shape(X)}, y {np.shape(y)}")
    if batch_size is None:
        batch_size = max(n, 1)
    is_int = isinstance(batch_size, (int, np.integer))
    if not is_int or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, "
                         f"got {batch_size!r}")
    order = np.random.default_rng(rng).permutation(n) if shuffle else None
    return _batches(X, y, batch_size, order)


def _batches(X, y, batch_size, order):
    if batch_size == 1 and order is not None:  # per-sample SGD: one-row views, no copies
        for i in order.tolist():
            yield X[i:i + 1], y[i:i + 1]
        return
    for start in range(0, len(X), batch_size):
        if order is None:
            yield X[start:start + batch_size], y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield X[idx], y[idx]


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
        n_val = int(round(validation * n))
    else:
        n_val = int(validation)
    if not 0 < n_val < n:
        raise ValueError(f"validation must leave examples on both sides, got "
                         f"{validation} of {n}")
    return (out[:-n_val], y[:-n_val]), (out[-n_val:], y[-n_val:])


# ------------------------------------------------------------------ MNIST ---

def mnist_dir(data_dir=None):
    """The folder MNIST is read from: ``data_dir``, else $COURSE_DATA_DIR,
    else $XDG_CACHE_HOME/course/mnist (default ~/.cache/course/mnist)."""
    if data_dir is None:
        data_dir = os.environ.get("COURSE_DATA_DIR") or None
    if data_dir is None:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        data_dir = Path(cache) / "course" / "mnist"
    return Path(data_dir).expanduser()


def _find(folder, name):
    """The path of ``name`` or ``name.gz`` in folder, or None."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _read(path):
    """The uncompressed bytes of a file, gzipped or not."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as err:
            raise MNISTError(f"{path} is not a valid gzip file "
                             f"({err})") from None
    return raw


def _verified(path, sha256):
    """The uncompressed bytes of path, after checking their SHA-256."""
    raw = _read(path)
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise MNISTError(f"{path} is corrupted: its content does not match "
                         f"the published MNIST checksum. Delete it (or "
                         f"replace it with a good copy) and load again.")
    return raw


def parse_idx(raw, name="IDX data"):
    """Parse IDX bytes (unsigned-byte data) into an array without copying.

    Returns a read-only uint8 array, e.g. images: (N, 28, 28), labels: (N,).
    """
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{name}: not an IDX file of unsigned bytes "
                         f"(magic number {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = ()
    if len(raw) >= header:
        shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    if len(raw) < header or len(raw) != header + int(np.prod(shape)):
        raise ValueError(f"{name}: size {len(raw)} bytes does not match the "
                         f"header's shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def mnist_status(data_dir=None):
    """(ok, message): are the four verified MNIST files in the folder?"""
    folder = mnist_dir(data_dir)
    problems = []
    for name, sha256 in MNIST_FILES.values():
        path = _find(folder, name)
        try:
            if path is None:
                problems.append(f"{name} missing")
            else:
                _verified(path, sha256)
        except MNISTError:
            problems.append(f"{path.name} corrupted")
    if problems:
        return False, (f"MNIST in {folder}: {', '.join(problems)}; run "
                       f"`course data mnist --dir {folder}` to fetch them")
    return True, f"MNIST: 4 verified files in {folder}"


def _download(url, folder, name, sha256, progress):
    """Fetch url into a temporary file in folder, verify, rename into place."""
    from tqdm.auto import tqdm

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=name,
                      disable=not progress, leave=False) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        _verified(tmp, sha256)
        with open(tmp, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        os.chmod(tmp, 0o644)  # mkstemp makes it private; others may share it
        os.replace(tmp, folder / (f"{name}.gz" if gzipped else name))
    except MNISTError:
        raise MNISTError(f"{name} downloaded from {url} failed verification "
                         f"and was deleted") from None
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise MNISTError(f"{url}: {err}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fetch_mnist(data_dir=None, mirrors=None, progress=True):
    """Make sure the four verified MNIST files are in the folder; return it.

    Missing files are downloaded from ``mirrors`` (base URLs holding
    ``train-images-idx3-ubyte.gz`` etc.; default ``MIRRORS``), trying each in
    turn; a mirror that fails is skipped for the rest.
    """
    folder = mnist_dir(data_dir)
    mirrors = list(MIRRORS if mirrors is None else mirrors)
    for name, sha256 in MNIST_FILES.values():
        path = _find(folder, name)
        if path is not None:
            _verified(path, sha256)
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as err:
            raise MNISTError(f"cannot write MNIST into {folder} ({err}); "
                             f"pass data_dir= a writable folder") from None
        failures = []
        for base in list(mirrors):
            try:
                _download(base.rstrip("/") + f"/{name}.gz", folder, name,
                          sha256, progress)
                break
            except MNISTError as err:  # refused, timed out, bad file, ...
                failures.append(str(err))
                mirrors.remove(base)
        else:
            failures = failures or ["no mirror left to try"]
            raise MNISTError(
                f"MNIST file {name} is not in {folder} and could not be "
                f"downloaded:\n  " + "\n  ".join(failures) + "\n"
                + _how_to_provide())
    return folder


def load_mnist(data_dir=None, download=True, mirrors=None):
    """Load MNIST in Keras's layout: ``(X_train, y_train), (X_test, y_test)``.

    X_train: (60000, 28, 28) uint8, y_train: (60000,) uint8,
    X_test: (10000, 28, 28) uint8, y_test: (10000,) uint8.
    Files are looked for as the module docstring says; with ``download=True``
    missing ones are fetched first (see ``fetch_mnist``).
    """
    folder = mnist_dir(data_dir)
    missing = [name for name, _ in MNIST_FILES.values()
               if _find(folder, name) is None]
    if missing and not download:
        raise MNISTError(f"MNIST files {', '.join(missing)} are not in "
                         f"{folder} and download=False.\n"
                         + _how_to_provide())
    if missing:
        fetch_mnist(folder, mirrors)
    a = {}  # copies free the file bytes and make the arrays writable
    for key, (name, sha256) in MNIST_FILES.items():
        path = _find(folder, name)
        a[key] = parse_idx(_verified(path, sha256), path.name).copy()
    return ((a["train_images"], a["train_labels"]),
            (a["test_images"], a["test_labels"]))
