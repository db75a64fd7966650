"""Tests for course.parallel: data-parallel training ends where train.fit ends.

The MPI tests write a script into tmp_path and run it under ``mpiexec -n 2``
(skipped without mpi4py or mpiexec); rank 0 saves what it got with np.savez or
JSON, and the test compares it with single-process ``train.fit``.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course import losses, parallel, train

# Shared by the scripts and the single-process reference: the same model, optimizer and data.
BUILD = '''
import numpy as np
from course import nn, optim


def build(cfg):
    """A small float64 MLP 5-8-3, its optimizer, and 3-class toy data of cfg["n"] rows."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((cfg["n"], 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64) + (X[:, 2] > 1)
    model = nn.Sequential(nn.Dense(5, 8, rng=2), nn.Tanh(), nn.Dense(8, 3, rng=3))
    if cfg["optimizer"] == "adam":
        optimizer = optim.Adam(model.parameters(), lr=0.01)
    else:
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, optimizer, X, y
'''

FIT = BUILD + '''
import json
import sys

from course import losses, parallel

for cfg in json.loads(sys.argv[1]):
    model, optimizer, X, y = build(cfg)
    history = parallel.fit(model, losses.softmax_cross_entropy, optimizer, X, y,
                           epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                           validation=(X[:7], y[:7]), progress=False)
    if "mpi4py.MPI" not in sys.modules or sys.modules["mpi4py.MPI"].COMM_WORLD.Get_rank() == 0:
        np.savez(cfg["out"], *[p.data for p in model.parameters()],
                 **{"history_" + k: v for k, v in history.metrics.items()})
'''

PRIMITIVES = BUILD + '''
import json
import sys

from mpi4py import MPI

from course import losses, parallel

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
result = {}
model, _, X, y = build({"n": 20, "optimizer": "sgd"})
for p in model.parameters():  # rank r's gradient is (r + 1) everywhere
    p.grad[...] = rank + 1.0
total, stats = parallel.allreduce_gradients(model, comm, weight=[3, 1][rank], stats=(rank + 0.5, 10.0))
result["weighted"] = [float(g) for p in model.parameters() for g in np.unique(p.grad)]
result["total"], result["stats"] = total, stats.tolist()
for p in model.parameters():
    p.grad[...] = rank + 1.0
parallel.allreduce_gradients(model, comm)
result["equal"] = sorted({float(g) for p in model.parameters() for g in np.unique(p.grad)})

if rank == 1:  # a different start: broadcast_parameters gives rank 1 rank 0's weights, in place
    held = [p.data for p in model.parameters()]
    for p in model.parameters():
        p.data[...] = 7.0
parallel.broadcast_parameters(model, comm)
gathered = comm.gather([p.data.copy() for p in model.parameters()], root=0)
if rank == 1:
    assert all(a is p.data for a, p in zip(held, model.parameters()))
if rank == 0:
    result["broadcast_equal"] = all(np.array_equal(a, b) for a, b in zip(*gathered))

model, optimizer, X, y = build({"n": 20, "optimizer": "sgd"})
try:  # rank 1 holds fewer rows: every rank raises
    parallel.fit(model, losses.softmax_cross_entropy, optimizer,
                 X[:20 - rank], y[:20 - rank], epochs=1, batch_size=4, progress=False)
    result[f"error_{rank}"] = None
except ValueError as error:
    result[f"error_{rank}"] = str(error)
errors = comm.gather(result[f"error_{rank}"], root=0)
if rank == 0:
    result["errors"] = errors
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
'''

# (optimizer, N, global batch, tolerance): even splits, a last batch of 2 (one row per rank),
# a last batch of 1 and batches of 1 (rank 1's slice is empty), a batch split 2/1.
CASES = [("sgd", 50, 16, 1e-9), ("adam", 50, 16, 1e-6), ("sgd", 49, 16, 1e-9),
         ("adam", 49, 16, 1e-6), ("sgd", 9, 1, 1e-9), ("sgd", 23, 3, 1e-9)]


def _mpiexec():
    """The mpiexec next to this Python (the mpich wheel's), else the one on PATH, else skip."""
    pytest.importorskip("mpi4py", reason="parallel training needs mpi4py (pip install -e '.[mpi]')")
    found = Path(sys.executable).with_name("mpiexec")
    found = str(found) if found.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec next to this Python or on PATH (pip install -e '.[mpi]')")
    return found


def _run(args, timeout=120):
    """Run a command with one BLAS thread per process; fail with its output if it fails."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(args, timeout=timeout, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"


def _config(tmp_path, optimizer, n, batch_size):
    return {"optimizer": optimizer, "n": n, "batch_size": batch_size, "epochs": 2, "seed": 5,
            "out": str(tmp_path / f"{optimizer}_{n}_{batch_size}.npz")}


def _reference(cfg):
    """Final weights and history of single-process train.fit on the same model and batches."""
    namespace = {}
    exec(BUILD, namespace)
    model, optimizer, X, y = namespace["build"](cfg)
    history = train.fit(model, losses.softmax_cross_entropy, optimizer, X, y, epochs=cfg["epochs"],
                        batch_size=cfg["batch_size"], seed=cfg["seed"], validation=(X[:7], y[:7]),
                        progress=False)
    return [p.data for p in model.parameters()], history


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    """Every case of CASES trained by parallel.fit on 2 ranks, in one mpiexec launch."""
    mpiexec = _mpiexec()
    tmp_path = tmp_path_factory.mktemp("parallel")
    script = tmp_path / "fit.py"
    script.write_text(FIT)
    configs = {case: _config(tmp_path, *case[:3]) for case in CASES}
    _run([mpiexec, "-n", "2", sys.executable, str(script), json.dumps(list(configs.values()))])
    return configs


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{o}-N{n}-batch{b}" for o, n, b, _ in CASES])
def test_two_ranks_end_where_train_fit_ends(two_rank_runs, case):
    cfg, tol = two_rank_runs[case], case[3]
    weights, history = _reference(cfg)
    saved = np.load(cfg["out"])
    for i, expected in enumerate(weights):
        np.testing.assert_allclose(saved[f"arr_{i}"], expected, rtol=0, atol=tol)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(saved[f"history_{key}"], history[key], rtol=tol)
    for key in ("accuracy", "val_accuracy"):
        np.testing.assert_array_equal(saved[f"history_{key}"], history[key])
    assert saved["history_compute_time"].shape == saved["history_comm_time"].shape == (2,)
    assert np.all(saved["history_comm_time"] >= 0) and np.all(saved["history_compute_time"] > 0)


@pytest.mark.slow
def test_one_process_with_comm_none_equals_train_fit_exactly(tmp_path):
    pytest.importorskip("mpi4py", reason="parallel training needs mpi4py (pip install -e '.[mpi]')")
    script = tmp_path / "fit.py"
    script.write_text(FIT)
    cfg = _config(tmp_path, "adam", 50, 16)
    _run([sys.executable, str(script), json.dumps([cfg])])
    weights, history = _reference(cfg)
    saved = np.load(cfg["out"])
    for i, expected in enumerate(weights):
        np.testing.assert_array_equal(saved[f"arr_{i}"], expected)
    np.testing.assert_array_equal(saved["history_loss"], history["loss"])


@pytest.mark.slow
def test_allreduce_broadcast_and_unequal_sizes_on_two_ranks(tmp_path):
    mpiexec = _mpiexec()
    script, out = tmp_path / "primitives.py", tmp_path / "result.json"
    script.write_text(PRIMITIVES)
    _run([mpiexec, "-n", "2", sys.executable, str(script), str(out)])
    result = json.loads(out.read_text())
    # weights 3 (rank 0, gradient 1) and 1 (rank 1, gradient 2): (3 * 1 + 1 * 2) / 4
    assert result["weighted"] == [1.25] * 4 and result["total"] == 4.0
    assert result["stats"] == [2.0, 20.0]  # 0.5 + 1.5 and 10 + 10, summed over ranks
    assert result["equal"] == [1.5]  # weight=None: the plain mean of 1 and 2
    assert result["broadcast_equal"] is True
    for message in result["errors"]:  # both ranks raise, naming both sizes
        assert "rank 0: 20" in message and "rank 1: 19" in message


def test_fit_without_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=np.int64)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[mpi\]"'):
        parallel.fit(None, losses.softmax_cross_entropy, None, X, y, epochs=1)
