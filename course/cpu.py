"""What this CPU can do at most: cores, clock, FLOPs per cycle and the peak they give.

The peak of a CPU in FLOP/s is the product of three numbers:

    peak = physical cores x clock (cycles per second) x FLOPs per cycle per core

FLOPs per cycle come from the vector units: an FMA unit w bits wide does
w / (8 itemsize) multiply-adds per cycle, 2 FLOPs each, so float32 gets twice
the FLOPs of float64. On Linux all three are read from ``/proc/cpuinfo`` and
``/sys``; elsewhere the cores come from ``os.cpu_count()`` and a factor that
cannot be read makes the peak None. It is an estimate:
turbo and AVX clocks and the number of FMA units differ from chip to chip.
``course.flops`` re-exports ``physical_cores`` and ``cpu_peak_gflops``.
"""
import os

import numpy as np


def _cpuinfo():
    """/proc/cpuinfo as a list of dicts, one per logical CPU; [] where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return []
    cpus = []
    for block in text.strip().split("\n\n"):
        fields = (line.split(":", 1) for line in block.splitlines() if ":" in line)
        cpus.append({key.strip(): value.strip() for key, value in fields})
    return cpus


def physical_cores():
    """Physical cores this process may run on (hyperthreads of one core count once)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows: no affinity; logical CPUs is the best we know
        return os.cpu_count() or 1
    cores = {(c.get("physical id"), c.get("core id")) for c in _cpuinfo()
             if c.get("processor", "").isdigit() and int(c["processor"]) in allowed
             and "core id" in c}
    return len(cores) or len(allowed)


def _flops_per_cycle(cpu, dtype):
    """(FLOPs per cycle per core, what was assumed) from one /proc/cpuinfo entry."""
    flags = set((cpu.get("flags") or cpu.get("Features") or "").split())
    lanes64 = 1 if np.dtype(dtype).itemsize == 8 else 2  # fp32 fits twice the lanes
    if "avx512f" in flags:
        if cpu.get("vendor_id") == "AuthenticAMD" and cpu.get("cpu family") == "25":
            return 16 * lanes64, "AVX-512 on Zen 4: two 256-bit FMA pipes"
        return 32 * lanes64, "AVX-512, assuming two 512-bit FMA units (some chips have one)"
    if "avx2" in flags and "fma" in flags:
        return 16 * lanes64, "AVX2 + FMA, two 256-bit FMA units"
    if "avx" in flags:
        return 8 * lanes64, "AVX, one 256-bit add and one 256-bit multiply"
    if "sse2" in flags:
        return 4 * lanes64, "SSE2, one 128-bit add and one 128-bit multiply"
    if "asimd" in flags:
        return 8 * lanes64, "NEON, assuming two 128-bit FMA units"
    return None, "instruction set unknown"


def _clock_ghz(cpu):
    """(GHz, source): cpufreq's maximum if the kernel exposes it, else /proc/cpuinfo."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) / 1e6, "cpufreq maximum"
    except (OSError, ValueError):
        pass
    if "cpu MHz" in cpu:
        return float(cpu["cpu MHz"]) / 1e3, "/proc/cpuinfo 'cpu MHz' (boost clocks may be higher)"
    return None, "clock unknown"


def cpu_peak_gflops(dtype=np.float32, ghz=None):
    """An ESTIMATE of the CPU's peak: cores x clock (GHz) x FLOPs per cycle per core.

    FLOPs per cycle come from the instruction-set flags: an FMA unit of w bits
    does w / (8 itemsize) multiply-adds, 2 FLOPs each, per cycle. Real chips
    differ (turbo and AVX clocks, FMA unit count), so treat it as an estimate.

    Returns:
        dict with ``cores``, ``ghz``, ``flops_per_cycle``, ``gflops`` (None when a
        factor is unknown, e.g. on macOS; pass ``ghz`` to supply the clock) and
        ``assumes`` (how each factor was found).
    """
    cpus = _cpuinfo()
    cpu = cpus[0] if cpus else {}
    per_cycle, isa = _flops_per_cycle(cpu, dtype)
    source = "given"
    if ghz is None:
        ghz, source = _clock_ghz(cpu)
    cores = physical_cores()
    gflops = cores * ghz * per_cycle if ghz and per_cycle else None
    return {"cores": cores, "ghz": ghz, "flops_per_cycle": per_cycle, "gflops": gflops,
            "assumes": f"{isa}; clock from {source}"}
