"""Tests for course.flops: FLOP and byte counts, the timing harness, sweeps, blocking, the roofline."""
import subprocess
import sys
import types

import numpy as np
import pytest

from course import backend, flops


def test_flop_counts_are_exact():
    assert flops.axpy_flops(10) == 20
    assert flops.gemv_flops(3) == 18 and flops.gemv_flops(3, 5) == 30
    assert flops.gemm_flops(2000) == 16_000_000_000
    assert flops.gemm_flops(2, 3, 4) == 48


def test_byte_counts_follow_the_itemsize():
    assert flops.axpy_bytes(10, np.float32) == 120 and flops.axpy_bytes(10, np.float64) == 240
    assert flops.gemv_bytes(3, 5, np.float64) == (15 + 5 + 3) * 8
    assert flops.gemm_bytes(2, 3, 4, np.float32) == (2 * 4 + 4 * 3 + 2 * 3) * 4
    assert flops.gemm_bytes(100, dtype="float64") == 3 * 100 * 100 * 8


def test_intensity_is_flat_for_blas_1_and_2_and_grows_for_gemm():
    q = {n: flops.gemm_flops(n) / flops.gemm_bytes(n, dtype=np.float32) for n in (100, 1000)}
    assert q[1000] == pytest.approx(10 * q[100]) and q[100] == pytest.approx(100 / 6)
    assert flops.axpy_flops(10**6) / flops.axpy_bytes(10**6, np.float32) == pytest.approx(1 / 6)
    assert flops.gemv_flops(1000) / flops.gemv_bytes(1000, dtype=np.float32) < 0.5


def test_mlp_forward_flops_counts_every_dense_layer():
    # 784 -> 128 -> 10 on a batch of 32: two matrix multiplies and two bias adds
    gemms = 2 * 32 * 784 * 128 + 2 * 32 * 128 * 10
    assert flops.mlp_forward_flops([784, 128, 10], 32, bias=False) == gemms
    assert flops.mlp_forward_flops([784, 128, 10], 32) == gemms + 32 * 128 + 32 * 10
    assert flops.mlp_forward_flops([5], 8) == 0


def test_blocked_intensity_is_about_the_block_size():
    # 8 blocks per side: q = n / (N + 1) = 512 / 9
    assert flops.blocked_intensity(512, 64) == pytest.approx(512 / 9)
    assert flops.blocked_intensity(4096, 64) == pytest.approx(64, rel=0.02)
    assert flops.best_block(32 * 1024, np.float64) == 36  # 3 * 36^2 * 8 <= 32 KiB < 3 * 37^2 * 8


@pytest.mark.parametrize("shape", [(64, 64, 64), (70, 45, 33), (5, 1, 7), (1, 130, 2)])
@pytest.mark.parametrize("block", [3, 16, 32, 200])
def test_blocked_matmul_equals_matmul(rng, shape, block):
    M, K, N = shape
    A, B = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C = flops.blocked_matmul(A, B, block=block)
    assert C.shape == (M, N) and C.dtype == np.float64
    np.testing.assert_allclose(C, A @ B, rtol=1e-12, atol=1e-12)


def test_blocked_matmul_keeps_float32_and_checks_shapes(rng):
    A = rng.standard_normal((40, 30)).astype(np.float32)
    B = rng.standard_normal((30, 20)).astype(np.float32)
    C = flops.blocked_matmul(A, B, block=16)
    assert C.dtype == np.float32
    np.testing.assert_allclose(C, A @ B, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(40, 30\).*\(20, 30\)"):
        flops.blocked_matmul(A, B.T)
    with pytest.raises(ValueError, match="block"):
        flops.blocked_matmul(A, B, block=0)


def test_blocked_matmul_runs_on_any_array_api_namespace(rng, xps):
    A, B = rng.standard_normal((7, 5)), rng.standard_normal((5, 3))
    C = flops.blocked_matmul(xps.asarray(A), xps.asarray(B), block=2)
    assert type(C).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(C), A @ B, rtol=1e-12)


def _fake_gpu_module(log):
    """A stand-in for cupy: only what ``sync`` touches, recording each synchronisation."""
    device = types.SimpleNamespace(synchronize=lambda: log.append("sync"))
    cuda = types.SimpleNamespace(Device=lambda: device)
    return types.SimpleNamespace(__name__="fakecupy", cuda=cuda)


def test_time_kernel_warms_up_repeats_and_syncs_before_each_clock_read(monkeypatch):
    log = []
    ticks = iter(range(1000))

    def clock():
        log.append("clock")
        return float(next(ticks))

    monkeypatch.setattr(flops, "perf_counter", clock)
    seconds = flops.time_kernel(lambda: log.append("call"), warmup=2, repeats=3, number=1,
                                xp=_fake_gpu_module(log))
    assert log.count("call") == 5 and log.count("sync") == 5
    assert log == ["clock", "call", "sync", "clock"] * 5  # the device is idle at each reading
    assert seconds == 1.0  # every sample spans one tick of the fake clock


def test_time_kernel_takes_the_median_and_picks_number_from_the_warmup(monkeypatch):
    calls = []
    durations = iter([0.25, 1.0, 2.0, 90.0, 3.0, 4.0])  # warm-up, then 5 samples per call
    now = [0.0]

    def kernel():
        calls.append(1)

    def clock():
        if len(calls) > clock.calls_seen:  # advance by the duration of the calls just made
            now[0] += next(durations)
            clock.calls_seen = len(calls)
        return now[0]

    clock.calls_seen = 0
    monkeypatch.setattr(flops, "perf_counter", clock)
    seconds = flops.time_kernel(kernel, warmup=1, repeats=5, min_time=1.0)
    # the warm-up took 0.25 s, so each sample makes 4 calls to last min_time = 1 s
    assert len(calls) == 1 + 5 * 4
    assert seconds == pytest.approx(3.0 / 4)  # the median sample: not the min, not the 90 s outlier


def test_time_kernel_rejects_settings_it_cannot_honour():
    with pytest.raises(ValueError, match="warmup"):
        flops.time_kernel(lambda: None, warmup=0)
    with pytest.raises(ValueError, match="repeats"):
        flops.time_kernel(lambda: None, repeats=0, number=1)


def test_sync_is_a_no_op_for_numpy_and_synchronises_a_gpu_module():
    log = []
    flops.sync(np)
    flops.sync()  # the active backend is NumPy here
    flops.sync(_fake_gpu_module(log))
    assert log == ["sync"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sweep_returns_one_consistent_record_per_size(dtype):
    sizes = [32, 96, 256]
    records = flops.sweep("gemm", sizes, dtype=dtype, repeats=3)
    assert [r["N"] for r in records] == sizes
    for r in records:
        assert r["kernel"] == "gemm" and r["device"] == "cpu"
        assert r["dtype"] == np.dtype(dtype).name
        assert r["seconds"] > 0 and r["gflops"] > 0 and r["gbs"] > 0
        assert r["gflops"] == pytest.approx(2 * r["N"] ** 3 / r["seconds"] / 1e9)
        assert r["intensity"] == pytest.approx(r["N"] / (6 if dtype == np.float32 else 12))


def test_sweep_divides_the_counted_work_by_the_measured_time(monkeypatch):
    monkeypatch.setattr(flops, "time_kernel", lambda fn, **kwargs: 0.5)  # every call: 0.5 s
    records = flops.sweep("gemm", [10, 20], dtype=np.float64, repeats=1)
    assert [r["seconds"] for r in records] == [0.5, 0.5]
    assert [r["gflops"] for r in records] == pytest.approx([2e3 / 0.5e9, 16e3 / 0.5e9])
    assert [r["gbs"] for r in records] == pytest.approx([2400 / 0.5e9, 9600 / 0.5e9])


@pytest.mark.parametrize("kernel", ["axpy", "gemv"])
def test_sweep_blas_1_and_2(kernel):
    records = flops.sweep(kernel, [1000, 4000], dtype=np.float64, repeats=3)
    assert all(r["seconds"] > 0 and r["gflops"] > 0 and r["gbs"] > 0 for r in records)
    assert all(r["intensity"] < 0.5 for r in records)  # memory bound


def test_sweep_runs_on_the_module_it_is_given():
    records = flops.sweep("gemm", [16], xp=np, repeats=1)
    assert records[0]["device"] == "cpu"
    with pytest.raises(ValueError, match="kernel must be one of"):
        flops.sweep("trsm", [16])


def test_gemm_kernel_computes_the_product():
    fn, flop, nbytes = flops._kernel("gemm", 8, np.dtype(np.float32), np, np.random.default_rng(0))
    rng = np.random.default_rng(0)  # the same draws, in the same order, as the kernel's inputs
    A, B = (rng.random((8, 8)).astype(np.float32) for _ in range(2))
    np.testing.assert_allclose(fn(), A @ B, rtol=1e-6)
    assert flop == 2 * 8**3 and nbytes == 3 * 64 * 4


def test_memory_bandwidth_is_positive():
    assert flops.memory_bandwidth(nbytes=8 * 2**20, repeats=3) > 0


def test_roofline_is_the_lower_of_the_two_roofs():
    attainable = flops.roofline([0.25, 1.0, 10.0, 100.0], peak_gflops=200.0, bandwidth_gbs=20.0)
    np.testing.assert_allclose(attainable, [5.0, 20.0, 200.0, 200.0])


def test_gpu_module_says_why_in_one_line(no_gpu, capsys):
    assert flops.gpu_module() is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("GPU part skipped: No GPU")


def test_gpu_sweep_and_blocked_matmul(cupy):
    assert flops.gpu_module() is cupy
    records = flops.sweep("gemm", [64, 256], dtype=np.float32, xp=cupy, repeats=3)
    assert all(r["device"] == "gpu" and r["gflops"] > 0 for r in records)
    A, B = cupy.random.standard_normal((70, 50)), cupy.random.standard_normal((50, 30))
    C = flops.blocked_matmul(A, B, block=32)
    np.testing.assert_allclose(backend.to_numpy(C), backend.to_numpy(A @ B), rtol=1e-10)
    assert flops.memory_bandwidth(nbytes=64 * 2**20, xp=cupy) > 0


def test_import_does_not_pull_in_matplotlib_or_cupy():
    code = "import sys, course.flops; print('matplotlib' in sys.modules, 'cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
