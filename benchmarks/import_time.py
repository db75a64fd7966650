"""What ``import course.nn`` costs next to ``import numpy``: ``python benchmarks/import_time.py``.

Each import runs in a fresh Python process, ``runs`` times each, the two alternating so both
see the same machine load; the median of each is reported with their ratio. The target is a
ratio of at most 1.3: the library adds its own few files to NumPy and nothing else.
"""
import statistics
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def seconds(module):
    """Seconds that ``import module`` takes in a new interpreter (interpreter start not included)."""
    out = subprocess.run([sys.executable, "-c", CODE.format(module=module)],
                         capture_output=True, text=True, check=True).stdout
    return float(out)


def compare(runs=7, modules=("numpy", "course.nn")):
    """Median seconds per module over ``runs`` alternating fresh processes: {module: seconds}."""
    times = {m: [] for m in modules}
    for _ in range(runs):
        for m in modules:
            times[m].append(seconds(m))
    return {m: statistics.median(t) for m, t in times.items()}


def main(runs=7):
    """Print the table; returns 0."""
    medians = compare(runs)
    base = medians["numpy"]
    print(f"| import | median of {runs} fresh processes (ms) | ratio to numpy |\n|---|---|---|")
    for module, t in medians.items():
        print(f"| {module} | {t * 1e3:.1f} | {t / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
