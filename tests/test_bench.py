"""The benchmarks in benchmarks/ compute what they claim (their timings are reported, never asserted).

The benchmarks are scripts of the repository, not part of the package: they are imported
here the way ``python benchmarks/run.py`` finds them, with benchmarks/ first on sys.path.
"""
import importlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    """Import benchmarks/<name>.py as the module ``name``."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


peers = _load("peers")
run = _load("run")


def _learnable(n, rng):
    """X: (n, 784) float32 in [0, 1), y: (n,) int64: ten noisy prototypes, one per class."""
    y = rng.integers(0, 10, n)
    prototypes = np.random.default_rng(99).random((10, 784), dtype=np.float32)
    X = 0.5 * prototypes[y] + 0.5 * rng.random((n, 784), dtype=np.float32)
    return X, y


# ---------------------------------------------------------------- MNIST peers


def test_compare_alternates_the_peers_and_reports_the_median(monkeypatch):
    log = []

    def fake(name, accuracy):
        def make(X, y):
            assert X.shape == (6, 784) and y.shape == (6,)
            return (lambda seed: log.append((name, seed))), (lambda X_t, y_t: accuracy)
        return make

    monkeypatch.setattr(peers, "TRAINERS", {"a": fake("a", 0.5), "b": fake("b", None)})
    train_set = (np.zeros((6, 784), np.float32), np.zeros(6, np.int64))
    results = peers.compare(train_set, train_set, epochs=3, peers=("a", "b"))
    assert log == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert [r["peer"] for r in results] == ["a", "b"]
    assert [r["test_accuracy"] for r in results] == [0.5, None]
    for r in results:
        assert len(r["epoch_times"]) == 3
        assert r["seconds_per_epoch"] == sorted(r["epoch_times"])[1]


def test_a_peer_that_is_not_installed_is_left_out(monkeypatch, capsys):
    def missing(X, y):
        raise ImportError("no such peer")

    monkeypatch.setitem(peers.TRAINERS, "missing", missing)
    train_set = (np.zeros((2, 784), np.float32), np.zeros(2, np.int64))
    assert peers.compare(train_set, train_set, epochs=1, peers=("missing",)) == []
    assert "(missing is not installed: left out" in capsys.readouterr().out


def test_course_trainer_learns_a_learnable_set(rng):
    X, y = _learnable(2048, rng)
    (result,) = peers.compare((X[:1536], y[:1536]), (X[1536:], y[1536:]), epochs=3,
                              peers=("course",))
    assert result["peer"] == "course" and len(result["epoch_times"]) == 3
    assert result["test_accuracy"] > 0.9  # ten classes of about equal size: chance is 0.1


def test_torch_trainer_learns_a_learnable_set(rng, torch):
    X, y = _learnable(2048, rng)
    (result,) = peers.compare((X[:1536], y[:1536]), (X[1536:], y[1536:]), epochs=3,
                              peers=("pytorch",))
    assert result["test_accuracy"] > 0.9


def test_mnist_table_gives_ratios_to_pytorch_and_to_the_products_alone():
    results = [{"peer": "course", "seconds_per_epoch": 0.75, "test_accuracy": 0.9791},
               {"peer": "pytorch", "seconds_per_epoch": 1.0, "test_accuracy": 0.9755},
               {"peer": "matrix products alone", "seconds_per_epoch": 0.25, "test_accuracy": None}]
    lines = run.mnist_table(results)
    assert lines[:2] == ["| peer | s/epoch | ratio to PyTorch | ratio to the matrix products alone "
                         "| test accuracy |", "|---|---|---|---|---|"]
    assert lines[2:] == ["| course | 0.75 | 0.75 | 3.00 | 97.91% |",
                         "| pytorch | 1.00 | 1.00 | 4.00 | 97.55% |",
                         "| matrix products alone | 0.25 | 0.25 | 1.00 | n/a |"]
    assert run.mnist_table(results[:1])[2] == "| course | 0.75 | n/a | n/a | 97.91% |"


def test_matmul_floor_runs_the_products_of_an_epoch(rng):
    epoch, accuracy = peers.TRAINERS["matrix products alone"](
        rng.random((300, 784), dtype=np.float32), np.zeros(300, dtype=np.int64))
    assert epoch(0) is None and accuracy(None, None) is None


# ---------------------------------------------------------------- Higham & Higham 2019


def test_hh19_with_fit_learns():
    _, cost_early = peers.hh19_course(steps=10)
    seconds, cost_late = peers.hh19_course(steps=10_000)
    assert seconds > 0 and math.isfinite(cost_late)
    assert cost_late < cost_early


def test_plain_loop_learns_and_recording_the_cost_changes_nothing():
    _, cost_early = peers.hh19_plain_numpy(steps=10)
    seconds, cost_late = peers.hh19_plain_numpy(steps=10_000)
    assert seconds > 0 and cost_late < cost_early
    assert peers.hh19_plain_numpy(steps=10_000, record_cost=True)[1] == cost_late


def test_torch_reference_learns(torch):
    _, cost_early = peers.hh19_torch(steps=10)
    seconds, cost_late = peers.hh19_torch(steps=5_000)
    assert seconds > 0 and cost_late < cost_early


# ---------------------------------------------------------------- running them


def test_run_script_starts_from_anywhere(tmp_path):
    out = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--help"], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "--quick" in out.stdout and "--data-dir" in out.stdout


def test_the_cnn_benchmark_trains_lesson_09s_network_and_times_its_gemms():
    cnn = _load("cnn")
    rng = np.random.default_rng(0)
    X, y = _learnable(512, rng)
    X = X.reshape(-1, 1, 28, 28)
    model = cnn.course_cnn()
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"]
    epoch = cnn.course_epoch(X, y)
    losses = [epoch(seed)["loss"][-1] for seed in range(4)]
    assert losses[-1] < 0.9 * losses[0]  # it learns
    assert cnn.gemm_seconds(cnn.BATCH) > 0
