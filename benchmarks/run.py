"""Run the benchmarks against peers: ``python benchmarks/run.py [--quick] [--data-dir DIR]``.

Prints two Markdown tables: MNIST training (``course``, PyTorch, scikit-learn: seconds per
epoch, the ratio to PyTorch, test accuracy) and Higham & Higham's per-sample SGD (``course``, plain
NumPy loops, PyTorch, against a MATLAB timing of netbpfull.m). What each measures is in
``peers.py``. Needs the bench extra for the peers: ``pip install -e ".[bench]"`` (PyTorch,
scikit-learn). MNIST is read from ``--data-dir``, else as ``course.data.load_mnist`` finds it.
Results and the machine they were measured on are kept in benchmarks/README.md.
"""
import argparse
import sys

import peers  # benchmarks/peers.py: this script's folder is first on sys.path

MATLAB_SECONDS = 148.6  # one timing of netbpfull.m, 10^6 steps (Bueler's MATH 692 notes)


def mnist_table(results):
    """The MNIST results (``peers.compare``'s dicts) as Markdown lines, ratios to PyTorch."""
    seconds = {r["peer"]: r["seconds_per_epoch"] for r in results}
    reference, floor = seconds.get("pytorch"), seconds.get("matrix products alone")
    lines = ["| peer | s/epoch | ratio to PyTorch | ratio to the matrix products alone | test accuracy |",
             "|---|---|---|---|---|"]
    for r in results:
        ratio = f"{r['seconds_per_epoch'] / reference:.2f}" if reference else "n/a"
        to_floor = f"{r['seconds_per_epoch'] / floor:.2f}" if floor else "n/a"
        accuracy = "n/a" if r["test_accuracy"] is None else f"{r['test_accuracy']:.2%}"
        lines.append(f"| {r['peer']} | {r['seconds_per_epoch']:.2f} | {ratio} | {to_floor} | {accuracy} |")
    return lines


def print_mnist(epochs, data_dir=None):
    """Run and print the MNIST benchmark: ``epochs`` epochs of each peer."""
    print(f"MNIST 784-256-128-10 ReLU, Adam lr 1e-3, batch {peers.BATCH}, float32, {epochs} "
          "epochs (median s/epoch; epochs alternate between peers)", flush=True)
    print("\n".join(mnist_table(peers.mnist(epochs, data_dir))))


def print_hh19(steps):
    """Run and print the Higham & Higham benchmark, ``steps`` per-sample SGD steps, rows as they finish."""
    print(f"\nHigham & Higham 2019: {steps:,} per-sample SGD steps of the 2-2-3-2 sigmoid network "
          "(rows appear as they finish)")
    print("| implementation | seconds | ratio to plain NumPy |\n|---|---|---|", flush=True)
    plain_s, _ = peers.hh19_plain_numpy(steps)
    print(f"| plain NumPy loop | {plain_s:.1f} | 1.00 |", flush=True)
    course_s, cost = peers.hh19_course(steps)
    print(f"| course.train.fit | {course_s:.1f} | {course_s / plain_s:.2f} |", flush=True)
    recording_s, _ = peers.hh19_plain_numpy(steps, record_cost=True)
    print(f"| plain NumPy loop, cost of all ten points after every step (netbp.m's savecost) | "
          f"{recording_s:.1f} | {recording_s / plain_s:.2f} |", flush=True)
    torch_steps = steps // 10  # PyTorch is slow at this size: time a tenth, scale up
    try:
        torch_s = peers.hh19_torch(torch_steps)[0] * steps / torch_steps
        print(f"| PyTorch, 1 thread (timed over {torch_steps:,} steps, scaled) | {torch_s:.1f} | "
              f"{torch_s / plain_s:.2f} |")
    except ImportError:
        print("| PyTorch | not installed | |")
    print(f"| MATLAB (netbpfull.m, 10^6 steps) | {MATLAB_SECONDS} | |")
    print(f"(final mean cost per point with course: {cost:.2e})")


def main(argv=None):
    """Parse the command line, run both benchmarks and print their tables; returns 0."""
    parser = argparse.ArgumentParser(description="Benchmarks of course against PyTorch and "
                                     "scikit-learn (tables in benchmarks/README.md)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 2 MNIST epochs and 10^5 steps (default 5 and 10^6)")
    parser.add_argument("--data-dir", default=None, help="folder holding the MNIST files")
    args = parser.parse_args(argv)
    epochs, steps = (2, 10**5) if args.quick else (5, 10**6)
    print_mnist(epochs, args.data_dir)
    print_hh19(steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
