"""Prometheus metrics of the control plane: cold-start phases, wake-to-ready time, replica counts.

prometheus_client rather than hand-written text: it is the reference client, and its histogram and
exposition format are what every Prometheus server expects.
"""

from __future__ import annotations

import contextlib
import itertools

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from tide.backends.base import ReplicaPhase, ReplicaState

# Cold starts span tiny CPU models (seconds) to large GPU models (minutes).
COLD_START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
STARTING_PHASES = (ReplicaPhase.WAITING_FOR_CAPACITY, ReplicaPhase.DOWNLOADING_WEIGHTS, ReplicaPhase.ENGINE_LOAD)


class ControlMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.phase_seconds = Histogram(
            "tide_replica_start_phase_seconds",
            "Time a starting replica spent in each phase before it became ready",
            ["deployment", "phase"],
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )
        self.wake_to_ready = Histogram(
            "tide_wake_to_ready_seconds",
            "From the first request that found no ready replica to the first replica ready",
            ["deployment"],
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )
        self.replicas = Gauge("tide_replicas", "Replicas by state", ["deployment", "state"], registry=self.registry)

    def replica_ready(self, state: ReplicaState, ready_at: float) -> None:
        times = state.phase_times
        order = [p.value for p in STARTING_PHASES if p.value in times] + [ReplicaPhase.READY.value]
        for phase, following in itertools.pairwise(order):
            end = times.get(following, ready_at)
            self.phase_seconds.labels(state.deployment_id, phase).observe(max(0.0, end - times[phase]))
        first = times.get(ReplicaPhase.WAITING_FOR_CAPACITY.value)
        if first is not None:
            self.phase_seconds.labels(state.deployment_id, "total").observe(max(0.0, ready_at - first))

    def woke_and_ready(self, deployment_id: str, seconds: float) -> None:
        self.wake_to_ready.labels(deployment_id).observe(max(0.0, seconds))

    def set_replica_counts(self, deployment_id: str, ready: int, desired: int) -> None:
        self.replicas.labels(deployment_id, "ready").set(ready)
        self.replicas.labels(deployment_id, "desired").set(desired)

    def forget(self, deployment_id: str) -> None:
        for state in ("ready", "desired"):
            with contextlib.suppress(KeyError):
                self.replicas.remove(deployment_id, state)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
