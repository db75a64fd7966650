"""Tests for course.cpu: the CPU's estimated peak from its cores, clock and vector units."""
import numpy as np
import pytest

from course import cpu, flops


def test_flops_re_exports_the_peak_estimate():
    assert flops.cpu_peak_gflops is cpu.cpu_peak_gflops
    assert flops.physical_cores is cpu.physical_cores


def test_cpu_peak_estimate_is_positive_and_says_what_it_assumes():
    peak32 = cpu.cpu_peak_gflops(np.float32, ghz=2.0)
    peak64 = cpu.cpu_peak_gflops(np.float64, ghz=2.0)
    assert peak32["cores"] >= 1 and peak32["ghz"] == 2.0 and "given" in peak32["assumes"]
    if peak32["flops_per_cycle"] is None:
        pytest.skip(f"no instruction-set flags here: {peak32['assumes']}")
    assert peak32["gflops"] == pytest.approx(peak32["cores"] * 2.0 * peak32["flops_per_cycle"])
    assert peak32["gflops"] > 0 and peak32["gflops"] == pytest.approx(2 * peak64["gflops"])


def test_flops_per_cycle_from_instruction_set_flags():
    zen4 = {"vendor_id": "AuthenticAMD", "cpu family": "25", "flags": "sse2 avx avx2 fma avx512f"}
    xeon = {"vendor_id": "GenuineIntel", "cpu family": "6", "flags": "sse2 avx avx2 fma avx512f"}
    assert cpu._flops_per_cycle(zen4, np.float32)[0] == 32
    assert cpu._flops_per_cycle(xeon, np.float32)[0] == 64
    assert cpu._flops_per_cycle(xeon, np.float64)[0] == 32
    assert cpu._flops_per_cycle({"flags": "sse2 avx avx2 fma"}, np.float64)[0] == 16
    assert cpu._flops_per_cycle({"flags": "sse2"}, np.float64)[0] == 4
    assert cpu._flops_per_cycle({}, np.float32) == (None, "instruction set unknown")


def test_peak_degrades_gracefully_without_proc_cpuinfo(monkeypatch):
    monkeypatch.setattr(cpu, "_cpuinfo", list)  # no /proc/cpuinfo: []
    monkeypatch.delattr(cpu.os, "sched_getaffinity", raising=False)
    peak = cpu.cpu_peak_gflops()
    assert peak["gflops"] is None and peak["cores"] >= 1 and "unknown" in peak["assumes"]


def test_physical_cores_counts_cores_not_hyperthreads(monkeypatch):
    cpus = [{"processor": str(p), "physical id": "0", "core id": str(p // 2)} for p in range(4)]
    monkeypatch.setattr(cpu, "_cpuinfo", lambda: cpus)
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert cpu.physical_cores() == 2
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {2}, raising=False)
    assert cpu.physical_cores() == 1
