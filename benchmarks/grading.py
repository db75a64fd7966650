"""What the autograder costs over running the notebooks: ``python benchmarks/grading.py``.

Grades N copies of a submission of a lesson (default: 20 of lesson 04, answered as in the
solution, outputs cleared) with ``course grade --jobs 2``, and executes the same notebooks with
plain nbclient, 2 at a time, each in a fresh kernel and folder: the least any grader must do.
Both run their kernels with one BLAS thread (the grader sets this so that results do not depend
on the machine's load; two kernels with two threads each would fight over two cores).
The two alternate (``--rounds``) so both see the same machine load; the table gives the median
wall time of each and the grader's overhead per submission. The grader's reference run of the
source (once per source, then cached) is timed on its own, before the rounds.

    python benchmarks/grading.py [--lesson solutions/04_mlp_backprop.ipynb] [--n 20] [--rounds 2]
"""
import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course.grading import grade

JOBS = 2


def submission(source, path):
    """The solution notebook as a student would hand it in: outputs cleared."""
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)


async def _plain(paths, jobs):
    """Execute each notebook in a fresh kernel and folder, at most ``jobs`` at once."""
    gate = asyncio.Semaphore(jobs)

    async def one(path):
        async with gate:
            with tempfile.TemporaryDirectory() as workdir:
                nb = nbformat.read(path, as_version=4)
                client = NotebookClient(nb, timeout=120, kernel_name="python3",
                                        resources={"metadata": {"path": workdir}})
                await client.async_execute()

    await asyncio.gather(*(one(path) for path in paths))


def plain_seconds(paths, jobs=JOBS):
    """Seconds to execute the notebooks at ``paths`` with plain nbclient, ``jobs`` at a time."""
    start = time.perf_counter()
    asyncio.run(_plain(paths, jobs))
    return time.perf_counter() - start


def grade_seconds(source, paths, jobs=JOBS):
    """Seconds for ``course grade`` to grade ``paths`` against ``source`` (all must earn full marks)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        gradebook = grade.grade_submissions(source, paths, out, jobs=jobs)
    seconds = time.perf_counter() - start
    full = [r.score == r.max_score for r in gradebook.submissions]
    if not all(full):
        raise SystemExit(f"{full.count(False)} submission(s) did not earn full marks: "
                         "the benchmark expects correct answers")
    return seconds


def main(argv=None):
    """Parse the command line, alternate the two runs, print the table; returns 0."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # inherited by the plain kernels, as the grader does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="solutions/04_mlp_backprop.ipynb")
    parser.add_argument("--n", type=int, default=20, help="submissions (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating repeats (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        paths = [str(Path(folder) / f"student{i:02d}.ipynb") for i in range(args.n)]
        for path in paths:
            submission(args.lesson, path)
        start = time.perf_counter()
        grade.reference_run(grade.load_source(args.lesson),
                            grade.Limits(grade.DEFAULT_TIMEOUT, grade.DEFAULT_TOTAL_TIMEOUT,
                                         grade.DEFAULT_MEMORY_LIMIT, sandbox=True))
        reference = time.perf_counter() - start
        plain, graded = [], []
        for round_ in range(args.rounds):
            plain.append(plain_seconds(paths))
            graded.append(grade_seconds(args.lesson, paths))
            print(f"round {round_ + 1}: plain nbclient {plain[-1]:.1f} s, "
                  f"course grade {graded[-1]:.1f} s", file=sys.stderr)
    p, g = statistics.median(plain), statistics.median(graded)
    print(f"{args.n} submissions of {Path(args.lesson).name}, --jobs {JOBS}, "
          f"median of {args.rounds} alternating rounds")
    print("| run | seconds | per submission | overhead |\n|---|---|---|---|")
    print(f"| plain nbclient, fresh kernel each | {p:.1f} | {p / args.n:.2f} | |")
    print(f"| course grade | {g:.1f} | {g / args.n:.2f} | {(g - p) / p:+.0%} |")
    print(f"| reference run of the source (once, then cached) | {reference:.1f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
