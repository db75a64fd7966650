"""Counting and measuring floating-point work: BLAS levels, GFLOP/s, the roofline.

The three BLAS levels do very different amounts of arithmetic per element they
touch. Counting a multiply-add as two FLOPs:

    level 1, axpy  y = alpha x + y    x, y: (N,)                  2 N      FLOPs
    level 2, gemv  y = A x            A: (M, N), x: (N,)          2 M N    FLOPs
    level 3, gemm  C = A B            A: (M, K), B: (K, N)        2 M N K  FLOPs

Each must read its inputs and write its output at least once, so axpy moves
3 N elements, gemv M N + N + M and gemm M K + K N + M N. The computational
intensity q = FLOPs / bytes is then constant for axpy and gemv (memory bound)
but grows like N for gemm (compute bound): that is why deep learning is built
on matrix multiplies. The roofline puts both limits in one picture:

    attainable GFLOP/s = min(peak GFLOP/s, bandwidth GB/s x intensity FLOP/byte)

Timing follows three rules: warm up first (caches, thread pools, GPU kernels
compiled on first use), repeat and take the median (other programs interfere),
and on a GPU wait for the device before reading the clock (CuPy calls return
as soon as the work is queued). Inputs are allocated once, outside the timed
region, and results are written into a preallocated ``out`` array.

The CPU's estimated peak (``cpu_peak_gflops``, ``physical_cores``) lives in
``course.cpu`` and is re-exported here, beside the bandwidth and the roofline.
"""
import itertools
import math
import statistics
from time import perf_counter

import numpy as np

from course import backend
from course.conv import conv2d_flops  # noqa: F401 - re-exported: a convolution's count
from course.cpu import cpu_peak_gflops, physical_cores  # noqa: F401 - re-exported for lesson 07

KERNELS = ("axpy", "gemv", "gemm")


# ---------------------------------------------------------------- counting


def axpy_flops(N):
    """FLOPs of y = alpha x + y for x, y: (N,): N multiplies + N adds = 2 N."""
    return 2 * N


def gemv_flops(M, N=None):
    """FLOPs of y = A x for A: (M, N), x: (N,) (N defaults to M): M dots of length N = 2 M N."""
    return 2 * M * (M if N is None else N)


def gemm_flops(M, N=None, K=None):
    """FLOPs of C = A B for A: (M, K), B: (K, N): M N dots of length K, 2 M N K (2 n^3 square)."""
    N, K = (M if N is None else N), (M if K is None else K)
    return 2 * M * N * K


def axpy_bytes(N, dtype=np.float64):
    """Least bytes axpy moves: read x (N,), read y (N,), write y (N,): 3 N elements."""
    return 3 * N * np.dtype(dtype).itemsize


def gemv_bytes(M, N=None, dtype=np.float64):
    """Least bytes gemv moves: read A (M, N) and x (N,), write y (M,)."""
    N = M if N is None else N
    return (M * N + N + M) * np.dtype(dtype).itemsize


def gemm_bytes(M, N=None, K=None, dtype=np.float64):
    """Least bytes gemm moves: read A (M, K) and B (K, N), write C (M, N), each once."""
    N, K = (M if N is None else N), (M if K is None else K)
    return (M * K + K * N + M * N) * np.dtype(dtype).itemsize


def mlp_forward_flops(sizes, batch, bias=True):
    """FLOPs of one forward pass of a dense MLP on a batch, activations not counted.

    Args:
        sizes: layer widths ``[n_0, n_1, ..., n_L]``; layer l maps (batch, n_{l-1})
            to (batch, n_l) by ``X @ W + b`` with W: (n_{l-1}, n_l).
        batch: number of examples N in X: (N, n_0).
        bias: count the N n_l additions of the bias as well.

    Returns:
        sum over layers of 2 N n_{l-1} n_l (+ N n_l with ``bias``).
    """
    total = 0
    for n_in, n_out in itertools.pairwise(sizes):
        total += gemm_flops(batch, n_out, n_in) + (batch * n_out if bias else 0)
    return total


def blocked_intensity(n, block):
    """FLOPs per element moved by a blocked n x n matrix multiply with b x b blocks.

    With N = ceil(n / b) blocks per side, each of the N^2 blocks of C is read and
    written once and meets N blocks of A and N of B, so (2 N + 2) n^2 elements
    move between slow and fast memory for 2 n^3 FLOPs:
    q = 2 n^3 / ((2 N + 2) n^2) = n / (N + 1), about b. Divide by the itemsize
    for FLOPs per byte.
    """
    blocks = math.ceil(n / block)
    return 2 * n**3 / ((2 * blocks + 2) * n**2)


def best_block(cache_bytes, dtype=np.float64):
    """Largest block side b whose three b x b blocks (of A, B, C) fit in ``cache_bytes``."""
    return math.isqrt(cache_bytes // (3 * np.dtype(dtype).itemsize))


# ---------------------------------------------------------------- timing


def sync(xp=None):
    """Wait until the device of array module ``xp`` (default: the active one) is idle.

    NumPy runs each call to completion, so this does nothing; CuPy queues work
    on the GPU and returns at once, so the clock may only be read after
    ``cupy.cuda.Device().synchronize()``.
    """
    xp = backend.xp() if xp is None else xp
    cuda = getattr(xp, "cuda", None)
    if cuda is not None:
        cuda.Device().synchronize()


def time_kernel(fn, warmup=1, repeats=5, number=None, xp=None, min_time=1e-3):
    """Median wall-clock seconds of one call of ``fn()``.

    Args:
        fn: callable with no arguments; its inputs are prepared beforehand.
        warmup: untimed calls first (at least 1 when ``number`` is None).
        repeats: timed samples; the median is robust to a few disturbed ones.
        number: calls per sample, averaged; None picks it from the last warm-up
            call so that one sample lasts about ``min_time`` seconds, which keeps
            the clock's resolution and Python's overhead out of short kernels.
        xp: array module that runs ``fn`` (default: the active one), for ``sync``.
        min_time: seconds one sample should last when ``number`` is chosen (default 1 ms).

    Returns:
        seconds per call (float), the median over ``repeats`` samples.
    """
    if number is None and warmup < 1:
        raise ValueError("time_kernel needs warmup >= 1 to choose number; pass number=")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    last = 0.0
    for _ in range(warmup):
        start = perf_counter()
        fn()
        sync(xp)
        last = perf_counter() - start
    if number is None:
        number = max(1, math.ceil(min_time / max(last, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = perf_counter()
        for _ in range(number):
            fn()
        sync(xp)
        samples.append((perf_counter() - start) / number)
    return statistics.median(samples)


def _device_name(xp):
    return "gpu" if getattr(xp, "__name__", "") == "cupy" else "cpu"


def _kernel(kernel, n, dtype, xp, rng):
    """Inputs for one kernel of size n on ``xp``; returns (fn, flops, bytes)."""
    def rand(*shape):
        return xp.asarray(rng.random(shape, dtype=np.float64).astype(dtype))

    if kernel == "axpy":
        x, y, tmp = rand(n), rand(n), xp.empty(n, dtype=dtype)
        alpha = dtype.type(1e-3)

        def fn():  # NumPy has no fused axpy: two passes through a scratch vector
            xp.multiply(x, alpha, out=tmp)
            xp.add(y, tmp, out=y)

        return fn, axpy_flops(n), axpy_bytes(n, dtype)
    if kernel == "gemv":
        A, x, y = rand(n, n), rand(n), xp.empty(n, dtype=dtype)
        return (lambda: xp.matmul(A, x, out=y)), gemv_flops(n), gemv_bytes(n, dtype=dtype)
    if kernel == "gemm":
        A, B, C = rand(n, n), rand(n, n), xp.empty((n, n), dtype=dtype)
        return (lambda: xp.matmul(A, B, out=C)), gemm_flops(n), gemm_bytes(n, dtype=dtype)
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def sweep(kernel, sizes, dtype=np.float32, warmup=1, repeats=5, xp=None, seed=0):
    """Time ``kernel`` ("axpy", "gemv" or "gemm") at each size N on the active device.

    Vectors are (N,) and matrices (N, N), filled with uniform random numbers drawn with
    ``seed``, in ``dtype``, on ``xp`` (default: the active array module); ``warmup`` and
    ``repeats`` go to ``time_kernel``.

    Returns:
        one dict per size with ``kernel``, ``device``, ``dtype`` (name), ``N``,
        ``seconds`` (median per call), ``gflops`` (1e9 FLOP/s), ``gbs`` (1e9
        bytes/s, from the least bytes the kernel must move) and ``intensity``
        (FLOPs per byte).
    """
    xp = backend.xp() if xp is None else xp
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    records = []
    for n in sizes:
        fn, flop, nbytes = _kernel(kernel, int(n), dtype, xp, rng)
        seconds = time_kernel(fn, warmup=warmup, repeats=repeats, xp=xp)
        records.append({
            "kernel": kernel, "device": _device_name(xp), "dtype": dtype.name, "N": int(n),
            "seconds": seconds, "gflops": flop / seconds / 1e9, "gbs": nbytes / seconds / 1e9,
            "intensity": flop / nbytes,
        })
        del fn  # free this size's inputs before the next size allocates
    return records


# ---------------------------------------------------------------- the machine (peak: course.cpu)


def memory_bandwidth(nbytes=256 * 2**20, repeats=5, xp=None):
    """Estimated memory bandwidth in GB/s from copying a (nbytes / 8,) float64 array.

    A copy reads and writes every byte once, so it counts 2 x nbytes (a CPU
    cache may also read the destination before writing it, which this ignores).
    Pick ``nbytes`` well above the last-level cache, or you measure the cache.
    """
    xp = backend.xp() if xp is None else xp
    src = xp.ones(nbytes // 8, dtype=np.float64)
    dst = xp.empty_like(src)
    seconds = time_kernel(lambda: xp.copyto(dst, src), warmup=1, repeats=repeats, xp=xp)
    return 2 * src.nbytes / seconds / 1e9


def roofline(intensity, peak_gflops, bandwidth_gbs):
    """Attainable GFLOP/s = min(peak, bandwidth x intensity) for intensity (FLOP/byte).

    intensity: a number or an array of any shape -> float64 array of the same shape.
    The ridge point peak / bandwidth is where a kernel stops being memory bound.
    """
    return np.minimum(peak_gflops, bandwidth_gbs * np.asarray(intensity, dtype=np.float64))


def gpu_module():
    """The cupy module when a GPU can be used; otherwise print one line saying why, return None."""
    try:
        return backend._cupy()
    except RuntimeError as exc:
        print(f"GPU part skipped: {str(exc).split('.')[0]}.")
        return None


# ---------------------------------------------------------------- blocking


def blocked_matmul(A, B, block=64):
    """C = A @ B computed one (block x block) tile at a time, as a cache-aware code would.

    A: (M, K), B: (K, N), C: (M, N); edge tiles are smaller when a size is not a
    multiple of ``block``. Each tile of C is updated by ``A_ik @ B_kj`` for
    k = 0, block, 2 block, ...: three tiles in fast memory at a time.
    """
    xp = backend.namespace(A, B)
    (M, K), (K2, N) = A.shape, B.shape
    if K != K2:
        raise ValueError(f"blocked_matmul: A is {A.shape} and B is {B.shape}; "
                         "A's columns must equal B's rows")
    if block < 1:
        raise ValueError(f"block must be a positive integer, got {block}")
    C = xp.zeros((M, N), dtype=xp.result_type(A.dtype, B.dtype))
    for i in range(0, M, block):
        rows = slice(i, min(i + block, M))
        for j in range(0, N, block):
            cols = slice(j, min(j + block, N))
            for k in range(0, K, block):
                inner = slice(k, min(k + block, K))
                C[rows, cols] += A[rows, inner] @ B[inner, cols]
    return C
