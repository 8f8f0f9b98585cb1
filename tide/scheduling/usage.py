"""Usage metering: GPU-minutes per deployment and replica, billed per STARTED minute while a replica runs.

Billing minutes are anchored at each run's start: minute k covers [started + 60k, started + 60(k+1)) and
is billed, whole, in the report window that contains its first instant, if the replica was still running
then. So a 61 s run is 2 minutes, and adjacent windows add up exactly (no minute billed twice).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class RunInterval:
    """A replica holding `gpus` GPUs from `started_at` until `stopped_at` (None: still running)."""

    deployment_id: str
    replica_id: str
    gpus: int
    started_at: float
    stopped_at: float | None = None


@dataclass(frozen=True)
class ReplicaUsage:
    deployment_id: str
    replica_id: str
    minutes: int
    gpu_minutes: int


@dataclass(frozen=True)
class UsageReport:
    start: float
    end: float
    replicas: tuple[ReplicaUsage, ...]
    deployments: dict[str, int]

    @property
    def total_gpu_minutes(self) -> int:
        return sum(self.deployments.values())


def billed_minutes(interval: RunInterval, start: float, end: float) -> int:
    """Started minutes of `interval` whose first instant lies in [start, end)."""
    # Fractions: float division could put an exact minute boundary on the wrong side.
    began = Fraction(interval.started_at)
    stopped = Fraction(end) if interval.stopped_at is None else min(Fraction(interval.stopped_at), Fraction(end))
    first = max(0, math.ceil((Fraction(start) - began) / SECONDS_PER_MINUTE))
    after_last = math.ceil((stopped - began) / SECONDS_PER_MINUTE)
    return max(0, after_last - first)


def gpu_minutes(intervals: Iterable[RunInterval], start: float, end: float) -> UsageReport:
    """GPU-minutes in the window [start, end), per replica (runs of the same replica summed) and per
    deployment, sorted by deployment then replica."""
    if end < start:
        raise ValueError(f"usage window ends ({end}) before it starts ({start})")
    minutes: dict[tuple[str, str], int] = {}
    gpu_mins: dict[tuple[str, str], int] = {}
    for interval in intervals:
        billed = billed_minutes(interval, start, end)
        key = (interval.deployment_id, interval.replica_id)
        minutes[key] = minutes.get(key, 0) + billed
        gpu_mins[key] = gpu_mins.get(key, 0) + billed * interval.gpus
    replicas = tuple(ReplicaUsage(d, r, minutes[(d, r)], gpu_mins[(d, r)]) for d, r in sorted(minutes))
    deployments: dict[str, int] = {}
    for replica in replicas:
        deployments[replica.deployment_id] = deployments.get(replica.deployment_id, 0) + replica.gpu_minutes
    return UsageReport(start, end, replicas, deployments)
