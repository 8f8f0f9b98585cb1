"""What one policy's replay produced."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timeline:
    """Samples every `step` seconds: load (in flight + queued) and replicas (running incl. starting)."""

    step: float
    times: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    # Contention replays only: GPUs this deployment's replicas hold (a replica placed on GPUs that a
    # preempted one still drains is placed, and counted in `replicas`, but holds nothing yet).
    gpus_held: list[int] = field(default_factory=list)

    def replicas_at(self, t: float) -> int:
        """Replicas at time t (each sample holds until the next one)."""
        index = bisect.bisect_right(self.times, t) - 1
        return self.replicas[index] if index >= 0 else 0


@dataclass
class PolicyResult:
    policy: str
    replica_seconds: float
    requests: int
    cold_starts: int
    waits: np.ndarray  # queue wait per request, seconds
    peak_replicas: int
    slo: float
    timeline: Timeline
    horizon: float
    description: str = ""
    parked_seconds: float = 0.0  # replica-seconds parked (counted in replica_seconds at the parked cost)
    wakes: int = 0  # parked replicas woken

    def wait_percentile(self, q: float) -> float:
        return float(np.percentile(self.waits, q)) if len(self.waits) else 0.0

    @property
    def within_slo(self) -> float:
        return float(np.mean(self.waits <= self.slo)) if len(self.waits) else 1.0

    def summary(self, oracle_cost: float | None) -> dict[str, object]:
        return {
            "policy": self.policy,
            "description": self.description,
            "replica_seconds": round(self.replica_seconds, 3),
            "cost_vs_oracle": round(self.replica_seconds / oracle_cost, 4) if oracle_cost else None,
            "requests": self.requests,
            "cold_starts": self.cold_starts,
            "parked_seconds": round(self.parked_seconds, 3),
            "wakes": self.wakes,
            "wait_p50_s": round(self.wait_percentile(50), 4),
            "wait_p95_s": round(self.wait_percentile(95), 4),
            "wait_p99_s": round(self.wait_percentile(99), 4),
            "within_slo": round(self.within_slo, 5),
            "peak_replicas": self.peak_replicas,
            "horizon_s": round(self.horizon, 3),
        }
