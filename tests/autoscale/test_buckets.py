"""The window averages the autoscaler reads: a window that went quiet reads a plain zero."""

from __future__ import annotations

import math

import pytest

from tide.autoscale.buckets import make_buckets


@pytest.mark.parametrize("algorithm", ["linear", "weighted"])
def test_a_window_that_went_quiet_reads_a_positive_zero(algorithm: str) -> None:
    # The running total adds and removes these in another order, leaving a residue of about -1e-17.
    window = make_buckets(6, algorithm)
    now = 100
    for value in (0.449, 0.652, 0.789, 0.094, 0.028):
        window.record(now, value)
        now += 1
    for _ in range(6):
        window.record(now, 0.0)
        now += 1
    average = window.average(now - 1)
    assert average == 0.0
    assert math.copysign(1.0, average) == 1.0, "a residue's sign would show as 'concurrency -0.0' in status"
    assert f"{average:.1f}" == "0.0"
