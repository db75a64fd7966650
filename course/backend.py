"""The CPU/GPU array switch.

Everything in ``course`` is written against the array API that NumPy and CuPy
share, so the same code runs on either. By default arrays are NumPy arrays on
the CPU. ``use("gpu")`` makes new parameters and data CuPy arrays on the GPU;
``use("auto")`` takes the GPU when there is one and otherwise stays on the CPU,
saying so in one line.

    >>> from course import backend
    >>> backend.use("cpu")
    'cpu'
    >>> backend.asarray([1, 2]).dtype
    dtype('int64')

Library code never imports NumPy or CuPy directly to compute; it asks
``namespace(x)`` for the module that owns an array ``x`` and calls that module's
functions. This is what lets a test run the library on ``array_api_strict``.
"""
import importlib
import types

import numpy as np

_GPU_HELP = (
    "No GPU is available: {why}. To use one, install CuPy for your CUDA version "
    "(pip install -e \".[gpu]\" installs cupy-cuda12x) on a machine with an NVIDIA GPU, "
    "for example Google Colab with a GPU runtime. Binder has no GPU. "
    "use(\"auto\") falls back to the CPU instead of raising."
)

_state = {"device": "cpu", "xp": np}


def _fast_numpy():
    """NumPy's namespace, with ``sum``, ``max`` and ``argmax`` called without the
    Python-level wrappers they usually go through.

    Each wrapper costs about a microsecond per call. On MNIST-sized arrays that
    is nothing, but in per-sample SGD on a tiny network (seed 002's 10^6
    steps) the arrays hold a handful of numbers and these calls were a sixth
    of the run. The results are identical: ``np.sum`` calls ``np.add.reduce``.
    (``nn.Dense`` takes the same care with its matrix products, see ``nn._matmul``.)
    """
    fast = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    fast.__name__ = "numpy"
    fast.sum = lambda x, axis=None, keepdims=False: np.add.reduce(x, axis=axis, keepdims=keepdims)
    fast.max = lambda x, axis=None, keepdims=False: np.maximum.reduce(x, axis=axis, keepdims=keepdims)
    fast.argmax = lambda x, axis=None, keepdims=False: x.argmax(axis=axis, keepdims=keepdims)
    return fast


NUMPY = _fast_numpy()


def _cupy():
    """Return the cupy module if CuPy is installed and sees a GPU, else raise RuntimeError."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        raise RuntimeError(_GPU_HELP.format(why="CuPy is not installed")) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(_GPU_HELP.format(why=f"CUDA reported {exc}")) from None
    if count == 0:
        raise RuntimeError(_GPU_HELP.format(why="CuPy sees no CUDA device"))
    return cupy


def use(device="cpu"):
    """Choose where new arrays live: ``"cpu"``, ``"gpu"`` or ``"auto"``.

    Args:
        device: ``"cpu"`` (NumPy), ``"gpu"`` (CuPy; raises ``RuntimeError`` with
            instructions when there is no GPU) or ``"auto"`` (GPU if possible,
            else CPU with a one-line note).

    Returns:
        The device now in use, ``"cpu"`` or ``"gpu"``.
    """
    if device not in ("cpu", "gpu", "auto"):
        raise ValueError(f"device must be 'cpu', 'gpu' or 'auto', got {device!r}")
    if device == "cpu":
        _state.update(device="cpu", xp=np)
        return "cpu"
    try:
        cupy = _cupy()
    except RuntimeError as exc:
        if device == "gpu":
            raise
        print(f"No GPU found, using the CPU (NumPy). ({str(exc).split('.')[0]}.)")
        _state.update(device="cpu", xp=np)
        return "cpu"
    _state.update(device="gpu", xp=cupy)
    return "gpu"


def device():
    """The device in use: ``"cpu"`` or ``"gpu"``."""
    return _state["device"]


def xp():
    """The array module in use: ``numpy`` on the CPU, ``cupy`` on the GPU."""
    return _state["xp"]


def namespace(x, *more):
    """The array-API namespace that owns the arrays ``x, *more`` (NumPy, CuPy, array_api_strict, ...).

    x, more: one or more arrays, any shapes (Python numbers and lists count as NumPy).
    NumPy arrays give ``NUMPY``: NumPy itself (NumPy 2 follows the array API)
    with faster reductions, see ``_fast_numpy``.
    """
    if type(x) is np.ndarray and not more:  # the common case, checked first: it is cheap
        return NUMPY
    arrays = (x, *more)
    if all(isinstance(a, (np.ndarray, np.generic)) for a in arrays):
        return NUMPY
    if all(isinstance(a, (int, float, list, tuple)) for a in arrays):
        return NUMPY  # plain Python numbers and lists, e.g. sigmoid(0.0)
    import array_api_compat

    return array_api_compat.array_namespace(*arrays)


def asarray(x, dtype=None):
    """Put ``x`` (any shape) on the active device, converting to ``dtype`` if given."""
    return _state["xp"].asarray(x, dtype=dtype)


def to_numpy(x):
    """Return ``x`` (any shape) as a NumPy array on the CPU, e.g. for plotting."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):  # CuPy
        return x.get()
    try:
        return np.from_dlpack(x)
    except (TypeError, AttributeError, RuntimeError, BufferError):
        return np.asarray(x)


def _blas():
    """Name of the BLAS library NumPy uses, and its thread count when known."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        name = "unknown"
    threads = None
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            threads = pools[0]["num_threads"]
    except ImportError:
        pass
    return name, threads


def info():
    """A dict describing the array setup: device, NumPy version and BLAS, CuPy and GPU."""
    blas, threads = _blas()
    report = {
        "device": device(),
        "numpy": np.__version__,
        "blas": blas,
        "blas_threads": threads,
        "cupy": None,
        "gpu": None,
        "gpu_error": None,
    }
    try:
        cupy = _cupy()
        report["cupy"] = cupy.__version__
        props = cupy.cuda.runtime.getDeviceProperties(0)
        report["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    except RuntimeError as exc:
        report["gpu_error"] = str(exc)
    return report
