"""Run the benchmarks against peers: ``python benchmarks/run.py [--quick]`` (same as ``course bench``).

Needs the bench extra for the peers: ``pip install -e ".[bench]"`` (PyTorch, scikit-learn).
Results and the machine they were measured on are kept in benchmarks/README.md.
"""
import sys

from course import bench

if __name__ == "__main__":
    sys.exit(bench.main(quick="--quick" in sys.argv[1:]))
