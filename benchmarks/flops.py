"""This machine's BLAS levels in GFLOP/s and GB/s, beside its estimated peak: ``python benchmarks/flops.py``.

The numbers lesson 07 measures, as one table: axpy (level 1), gemv (level 2) and gemm
(level 3) in float32 and float64 on the active device (``--gpu`` for CuPy), the CPU's
estimated peak and the memory bandwidth of a large copy.
"""
import sys
import time

import numpy as np

from course import backend, flops

SIZES = {"axpy": [10**6, 10**7], "gemv": [2000, 4000], "gemm": [2000, 4000]}


def harness_overhead(n, dtype=np.float32, repeats=5):
    """Seconds per GEMM from ``flops.sweep`` and from a bare ``A @ B`` timed by hand (best of
    ``repeats``): what the harness (its callables, out= buffer, median) costs on top."""
    harness = flops.sweep("gemm", [n], dtype=dtype, repeats=repeats)[0]["seconds"]
    A, B = np.ones((n, n), dtype), np.ones((n, n), dtype)
    A @ B
    bare = []
    for _ in range(repeats):
        start = time.perf_counter()
        A @ B
        bare.append(time.perf_counter() - start)
    return harness, min(bare)


def main(argv=()):
    """Print the BLAS-level table, the estimated peak, the bandwidth and the harness's overhead."""
    if "--gpu" in argv:
        backend.use("gpu")
    print(f"device: {backend.device()}; BLAS levels, median of 5 timed calls after a warm-up")
    print("| kernel | dtype | N | GFLOP/s | GB/s | FLOP/byte |\n|---|---|---|---|---|---|")
    for kernel, sizes in SIZES.items():
        for dtype in (np.float32, np.float64):
            for r in flops.sweep(kernel, sizes, dtype=dtype):
                print(f"| {kernel} | {r['dtype']} | {r['N']:,} | {r['gflops']:.1f} | "
                      f"{r['gbs']:.1f} | {r['intensity']:.2f} |")
    if backend.device() == "cpu":
        for dtype in (np.float32, np.float64):
            peak = flops.cpu_peak_gflops(dtype)
            value = f"{peak['gflops']:.0f}" if peak["gflops"] else "unknown"
            print(f"estimated {np.dtype(dtype).name} peak: {value} GFLOP/s = {peak['cores']} cores "
                  f"x {peak['ghz'] or 0:.2f} GHz x {peak['flops_per_cycle']} FLOP/cycle ({peak['assumes']})")
    print(f"memory bandwidth (copy of 256 MiB): {flops.memory_bandwidth():.1f} GB/s")
    if backend.device() == "cpu":
        print("| float32 GEMM, N | harness s | bare A @ B s (best) | harness overhead |\n|---|---|---|---|")
        for n in (1000, 4000):
            harness, bare = harness_overhead(n)
            print(f"| {n} | {harness:.4f} | {bare:.4f} | {harness / bare - 1:+.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
