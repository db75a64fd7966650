"""Data-parallel training on MPI against one process: ``python benchmarks/parallel.py``.

The MNIST MLP 784-256-128-10 (ReLU, Adam lr 1e-3, global batch 256, float32 or, with
``--dtype float64``, float64, one BLAS
thread per rank) trained with ``course.parallel.fit`` under ``mpiexec -n 1`` and
``mpiexec -n 2``, the two alternating for ``--rounds`` rounds. Prints, per run, the
examples per second (median epoch), the communication share of the epoch, the ratio of
the two throughputs, and the largest difference between the final weights of the two.
A third run in each round, two processes that each train alone on half of the data
(``--alone``), gives the most that two ranks could gain on this machine.
Needs the MPI extra: ``pip install -e ".[mpi]"``. MNIST is read as
``course.data.load_mnist`` finds it (``COURSE_DATA_DIR``).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SIZES = [784, 256, 128, 10]


def worker(out, epochs, dtype, alone=False):
    """One rank of the run: train, and on rank 0 write the history and the weights to ``out``.

    With ``alone``, each rank trains its own copy on its share of the data with
    ``train.fit`` and never communicates: the ranks' epochs then take what the machine
    allows two independent processes, the ceiling of any data-parallel speedup on it.
    """
    from mpi4py import MPI

    from course import data, losses, nn, optim, parallel, train

    comm = MPI.COMM_WORLD
    (X, y), _ = data.load_mnist()
    X, y = data.prepare(X, y, dtype=dtype)
    model = nn.mlp(SIZES, rng=0, dtype=dtype)
    optimizer = optim.Adam(model.parameters())
    if alone:
        share = slice(comm.rank, None, comm.size)
        history = train.fit(model, losses.softmax_cross_entropy, optimizer, X[share], y[share],
                            epochs=epochs, batch_size=256 // comm.size, progress=False)
        every = comm.gather(history["time"])  # after training: each rank's epoch times, on rank 0
        slowest = [max(times) for times in zip(*every)] if comm.rank == 0 else []
        record = {"time": slowest, "compute_time": slowest, "comm_time": [0.0] * len(slowest)}
    else:
        history = parallel.fit(model, losses.softmax_cross_entropy, optimizer, X, y, epochs=epochs,
                               batch_size=256, seed=0, progress=False)
        record = {key: history[key] for key in ("time", "compute_time", "comm_time")}
    if comm.rank == 0:
        Path(out, "history.json").write_text(json.dumps(record))
        np.savez(Path(out, "weights.npz"), *[p.data for p in model.parameters()])


def run(ranks, epochs, dtype="float32", alone=False):
    """Train on ``ranks`` processes (``alone``: see ``worker``); returns (history dict, weights)."""
    here = os.path.dirname(sys.executable)
    mpiexec = shutil.which("mpiexec", path=here + os.pathsep + os.environ.get("PATH", ""))
    if mpiexec is None:
        sys.exit('mpiexec not found: pip install -e ".[mpi]"')
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker", out,
                        "--epochs", str(epochs), "--dtype", dtype] + ["--alone"] * alone,
                       check=True, env=env)
        history = json.loads(Path(out, "history.json").read_text())
        with np.load(Path(out, "weights.npz")) as saved:
            weights = [saved[key] for key in saved.files]
    return history, weights


def main(argv=None):
    """Run both, alternating, and print the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--alone", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.epochs, args.dtype, args.alone)
        return 0
    rows, weights = {1: [], 2: [], "alone": []}, {}
    for _ in range(args.rounds):
        for ranks in (1, 2, "alone"):
            history, weights[ranks] = run(2 if ranks == "alone" else ranks, args.epochs, args.dtype,
                                          alone=ranks == "alone")
            epoch = statistics.median(history["time"])
            comm = statistics.median(c / t for c, t in zip(history["comm_time"], history["time"]))
            rows[ranks].append((60000 / epoch, comm))
    print("| run | 1 rank: examples/s | 2 ranks: examples/s | 2 ranks / 1 rank | "
          "communication share, 1 rank | communication share, 2 ranks | "
          "2 processes alone / 1 rank (the ceiling) |\n|---|---|---|---|---|---|---|")
    for i, (one, two, alone) in enumerate(zip(rows[1], rows[2], rows["alone"]), 1):
        print(f"| {i} | {one[0]:,.0f} | {two[0]:,.0f} | {two[0] / one[0]:.2f} | {one[1]:.1%} | "
              f"{two[1]:.1%} | {alone[0] / one[0]:.2f} |")
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(weights[1], weights[2]))
    print(f"largest difference between the final weights of 1 and 2 ranks: {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
