"""The benchmark helpers compute what they claim (their timings are reported, never asserted)."""
import math

import pytest

from course import bench


def test_hh19_with_fit_learns():
    _, cost_early = bench.hh19_course(steps=10)
    seconds, cost_late = bench.hh19_course(steps=20_000)
    assert seconds > 0 and math.isfinite(cost_late)
    assert cost_late < cost_early


def test_plain_loop_learns_and_recording_the_cost_changes_nothing():
    _, cost_early = bench.hh19_plain_numpy(steps=10)
    seconds, cost_late = bench.hh19_plain_numpy(steps=20_000)
    assert seconds > 0 and cost_late < cost_early
    assert bench.hh19_plain_numpy(steps=20_000, record_cost=True)[1] == cost_late


def test_torch_reference_learns():
    pytest.importorskip("torch", reason="PyTorch is a benchmark-only extra")
    _, cost_early = bench.hh19_torch(steps=10)
    seconds, cost_late = bench.hh19_torch(steps=5_000)
    assert seconds > 0 and cost_late < cost_early
