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
functions. So any array-API library works, not only these two:
``use(array_api_strict)`` makes new parameters ``array_api_strict`` arrays, and
training keeps every array in that namespace and on its device. The tests run
the library that way, which keeps the GPU path honest on a machine without one.
"""
import importlib

import numpy as np

_GPU_HELP = (
    "No GPU is available: {why}. To use one, install CuPy for your CUDA version "
    "(pip install -e \".[gpu]\" installs cupy-cuda12x) on a machine with an NVIDIA GPU, "
    "for example Google Colab with a GPU runtime. Binder has no GPU. "
    "use(\"auto\") falls back to the CPU instead of raising."
)

_state = {"device": "cpu", "xp": np, "array_device": None}


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


def use(device="cpu", array_device=None):
    """Choose where new arrays live: ``"cpu"``, ``"gpu"``, ``"auto"`` or an array namespace.

    Args:
        device: ``"cpu"`` (NumPy), ``"gpu"`` (CuPy; raises ``RuntimeError`` with
            instructions when there is no GPU), ``"auto"`` (GPU if possible,
            else CPU with a one-line note), or any array-API namespace (or its
            module), e.g. ``array_api_strict``.
        array_device: with a namespace, the device new arrays go to, e.g.
            ``array_api_strict.Device("device1")``; default its default device.

    Returns:
        The device now in use: ``"cpu"``, ``"gpu"``, or the namespace's name.
    """
    if device is np or getattr(device, "__name__", None) == "cupy":
        device = "cpu" if device is np else "gpu"  # the modules of the two named devices
    if not isinstance(device, str):
        if not hasattr(device, "asarray"):
            raise ValueError(f"device must be 'cpu', 'gpu', 'auto' or an array namespace, "
                             f"got {device!r}")
        name = getattr(device, "__name__", type(device).__name__)
        _state.update(device=name, xp=device, array_device=array_device)
        return name
    if array_device is not None:
        raise ValueError("array_device goes with an array namespace, not with a device name")
    if device not in ("cpu", "gpu", "auto"):
        raise ValueError(f"device must be 'cpu', 'gpu', 'auto' or an array namespace, got {device!r}")
    if device == "cpu":
        _state.update(device="cpu", xp=np, array_device=None)
        return "cpu"
    try:
        cupy = _cupy()
    except RuntimeError as exc:
        if device == "gpu":
            raise
        print(f"No GPU found, using the CPU (NumPy). ({str(exc).split('.')[0]}.)")
        _state.update(device="cpu", xp=np, array_device=None)
        return "cpu"
    _state.update(device="gpu", xp=cupy, array_device=None)
    return "gpu"


def device():
    """The device in use: ``"cpu"``, ``"gpu"``, or the name of the namespace given to ``use``."""
    return _state["device"]


def xp():
    """The array module in use: ``numpy`` on the CPU, ``cupy`` on the GPU, or the namespace given."""
    return _state["xp"]


def namespace(x, *more):
    """The array-API namespace that owns the arrays ``x, *more`` (NumPy, CuPy, array_api_strict, ...).

    x, more: one or more arrays, any shapes. NumPy arrays, NumPy scalars and
    plain Python numbers and lists give ``numpy`` itself (NumPy 2 follows the
    array API); other arrays give what ``array_api_compat.array_namespace`` finds.
    """
    if type(x) is np.ndarray and not more:  # the common case first: it is the quickest check
        return np
    arrays = (x, *more)
    if all(isinstance(a, (np.ndarray, np.generic, int, float, list, tuple)) for a in arrays):
        return np
    import array_api_compat

    return array_api_compat.array_namespace(*arrays)


def asarray(x, dtype=None):
    """Put ``x`` (any shape) on the active device, converting to ``dtype`` if given.

    ``dtype`` may be a NumPy dtype (``np.float32``) whatever the namespace: it is
    looked up by name in the namespace in use (``xp.float32``).
    """
    xp = _state["xp"]
    if xp is np or _state["device"] == "gpu":
        return xp.asarray(x, dtype=dtype)
    return xp.asarray(x, dtype=dtype_in(xp, dtype), device=_state["array_device"])


def dtype_in(xp, dtype):
    """The namespace ``xp``'s own dtype for ``dtype`` (a NumPy dtype such as ``np.float32``, or xp's).

    NumPy and CuPy take NumPy dtypes; another namespace has its own dtype
    objects, found by name (``np.float32`` -> ``xp.float32``).
    """
    if dtype is None or xp is np:
        return dtype
    try:
        return getattr(xp, np.dtype(dtype).name)
    except TypeError:  # not a NumPy dtype: already one of xp's
        return dtype


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
