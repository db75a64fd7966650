"""Lesson 09's CNN, one epoch of MNIST: ``course`` against PyTorch: ``python benchmarks/cnn.py``.

conv(1->16, 3x3, pad 1), ReLU, max-pool 2, conv(16->32, 3x3, pad 1), ReLU, max-pool 2,
flatten, dense(1568->10); softmax cross-entropy, Adam (lr 1e-3), batches of 128, float32.
``course`` runs with NumPy's BLAS on 2 threads, PyTorch (CPU) with 2 threads (``--threads``); the two take
turns epoch by epoch (``--rounds``), so each sees the same machine load. The table gives the
median seconds per epoch, the ratio, and the share of ``course``'s epoch spent in its matrix
products: the same GEMMs (per batch: forward ``W @ cols`` of each convolution and the dense
layer, backward ``(cols @ dout.T).T`` and ``W.T @ dout`` of each, no input gradient for the first
layer), timed alone on arrays of the same shapes.

    COURSE_DATA_DIR=../shared/data/mnist python benchmarks/cnn.py [--rounds 2] [--n 60000] [--threads 2]

``--threads 1`` compares the two on one core each: NumPy runs every elementwise operation
on one thread whatever the setting, while PyTorch's kernels use every thread it is given.
"""
import argparse
import statistics
import sys
import time

import numpy as np
from peers import torch_epochs  # benchmarks/ is the script's folder, so first on sys.path
from threadpoolctl import threadpool_limits

from course import data, losses, nn, optim, train

BATCH = 128
THREADS = 2


def course_cnn():
    f32 = np.float32
    return nn.Sequential(
        nn.Conv2D(1, 16, 3, padding=1, rng=0, dtype=f32), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 32, 3, padding=1, rng=1, dtype=f32), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Dense(32 * 7 * 7, 10, init="he", rng=2, dtype=f32))


def course_epoch(X, y):
    model = course_cnn()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    return lambda seed: train.fit(model, losses.softmax_cross_entropy, opt, X, y, epochs=1,
                                  batch_size=BATCH, progress=False, seed=seed, metrics=())


def torch_epoch(X, y, threads=THREADS):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    t = torch.nn
    model = t.Sequential(t.Conv2d(1, 16, 3, padding=1), t.ReLU(), t.MaxPool2d(2),
                         t.Conv2d(16, 32, 3, padding=1), t.ReLU(), t.MaxPool2d(2),
                         t.Flatten(), t.Linear(32 * 7 * 7, 10))
    return torch_epochs(model, X, y)


def gemm_seconds(n_images):
    """Seconds of the GEMMs of one epoch of ``course``'s CNN, timed alone (median of 3)."""
    rng = np.random.default_rng(0)
    pixels = BATCH * 28 * 28

    def a_times_b(m, k, n):  # (m, k) @ (k, n), both row-major
        return rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)

    def a_times_bt(m, k, n):  # (m, k) @ (n, k).T, as Conv2D computes cols @ dout_flat.T
        return rng.random((m, k), dtype=np.float32), rng.random((n, k), dtype=np.float32).T

    pairs = [a_times_b(16, 9, pixels), a_times_b(32, 144, pixels // 4),  # forward
             a_times_b(BATCH, 1568, 10),
             a_times_bt(9, pixels, 16), a_times_bt(144, pixels // 4, 32),  # weight gradients
             a_times_b(1568, BATCH, 10),
             a_times_b(144, 32, pixels // 4), a_times_b(BATCH, 10, 1568)]  # input gradients
    times = []
    for _ in range(3):
        start = time.perf_counter()
        for a, b in pairs:
            a @ b
        times.append(time.perf_counter() - start)
    return statistics.median(times) * n_images / BATCH


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="epochs of each (default 2)")
    parser.add_argument("--n", type=int, default=60_000, help="training images (default 60000)")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"BLAS and PyTorch threads (default {THREADS})")
    args = parser.parse_args(argv)
    (X_raw, y_raw), _ = data.load_mnist()
    X, y = data.prepare(X_raw[:args.n], y_raw[:args.n])
    X = X.reshape(-1, 1, 28, 28)
    peers = {"course": course_epoch(X, y)}
    try:
        peers["PyTorch"] = torch_epoch(X, y.astype(np.int64), args.threads)
    except ImportError:
        print("PyTorch is not installed: pip install -e '.[bench]'", file=sys.stderr)
    seconds = {name: [] for name in peers}
    with threadpool_limits(args.threads):
        for seed in range(args.rounds):
            for name, epoch in peers.items():
                start = time.perf_counter()
                epoch(seed)
                seconds[name].append(time.perf_counter() - start)
                print(f"epoch {seed + 1}, {name}: {seconds[name][-1]:.1f} s", file=sys.stderr)
        gemm = gemm_seconds(len(X))
    ours = statistics.median(seconds["course"])
    print(f"{len(X):,} images, batch {BATCH}, float32, {args.threads} thread(s), "
          f"median of {args.rounds} alternating epochs")
    print("| peer | seconds per epoch | ratio to PyTorch |\n|---|---|---|")
    for name, values in seconds.items():
        ratio = statistics.median(values) / statistics.median(seconds["PyTorch"]) \
            if "PyTorch" in seconds else float("nan")
        print(f"| {name} | {statistics.median(values):.1f} | {ratio:.2f}x |")
    print(f"| course's GEMMs alone | {gemm:.1f} | ({gemm / ours:.0%} of course's epoch) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
