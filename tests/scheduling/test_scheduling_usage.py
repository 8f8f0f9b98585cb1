"""Usage metering: GPU-minutes billed per started minute while a replica runs."""

from __future__ import annotations

import pytest

from tide.scheduling import RunInterval, billed_minutes, gpu_minutes


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (1, 1), (59.9, 1), (60, 1), (60.001, 2), (61, 2), (120, 2), (3600, 60)],
)
def test_every_started_minute_is_billed(seconds: float, minutes: int) -> None:
    assert billed_minutes(RunInterval("d", "r", 1, 1000.0, 1000.0 + seconds), 0, 10_000) == minutes


def test_gpu_minutes_multiply_by_gpus_and_sum_per_deployment() -> None:
    intervals = [
        RunInterval("llama", "r0", 2, 0, 90),  # 2 minutes x 2 GPUs
        RunInterval("llama", "r1", 2, 30, 31),  # 1 minute x 2 GPUs
        RunInterval("llama", "r0", 2, 200, 260),  # restarted: 1 more minute
        RunInterval("tiny", "r0", 1, 0, None),  # still running at the end of the window: 10 minutes
    ]
    report = gpu_minutes(intervals, 0, 600)
    assert [(r.deployment_id, r.replica_id, r.minutes, r.gpu_minutes) for r in report.replicas] == [
        ("llama", "r0", 3, 6),
        ("llama", "r1", 1, 2),
        ("tiny", "r0", 10, 10),
    ]
    assert report.deployments == {"llama": 8, "tiny": 10}
    assert report.total_gpu_minutes == 18


def test_adjacent_windows_add_up_without_double_billing() -> None:
    run = RunInterval("d", "r", 4, 50, 215)  # 165 s: 3 started minutes, crossing both window edges
    whole = billed_minutes(run, 0, 1000)
    split = billed_minutes(run, 0, 100) + billed_minutes(run, 100, 170) + billed_minutes(run, 170, 1000)
    assert whole == split == 3


def test_runs_outside_the_window_cost_nothing() -> None:
    assert billed_minutes(RunInterval("d", "r", 1, 500, 560), 0, 500) == 0
    assert billed_minutes(RunInterval("d", "r", 1, 0, 100), 100, 200) == 0


def test_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError):
        gpu_minutes([], 10, 5)
