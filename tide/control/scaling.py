"""Per-deployment scaling state: feeds gateway load signals to the pure autoscaler, keeps its history.

The gateway is sampled every second (`record`), the autoscaler decides every `tick_interval` (2 s), and a
request at zero decides at once (`wake`). The controller applies `current` within min/max.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

from tide.autoscale import Autoscaler, ScaleDecision
from tide.backends.base import ReplicaPhase, ReplicaState
from tide.spec import DeploymentSpec

HISTORY_LENGTH = 10


def measured_cold_start(replicas: Iterable[ReplicaState]) -> float | None:
    """Median seconds from asked-for to ready over the replicas that became ready (None: none yet)."""
    ready = ReplicaPhase.READY.value
    first = ReplicaPhase.WAITING_FOR_CAPACITY.value
    spans = [
        r.phase_times[ready] - r.phase_times[first]
        for r in replicas
        if ready in r.phase_times and first in r.phase_times
    ]
    return statistics.median(spans) if spans else None


class DeploymentScaler:
    def __init__(self, spec: DeploymentSpec, now: float) -> None:
        self.config = spec.autoscaler_config()
        self.autoscaler = Autoscaler(self.config)
        self.last_decision_at = now
        self.last: ScaleDecision | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LENGTH)

    @property
    def current(self) -> int:
        """The replica count to run: the autoscaler's last decision (one number, kept there)."""
        return self.autoscaler.applied

    def update_spec(self, spec: DeploymentSpec) -> None:
        config = spec.autoscaler_config()
        if config != self.config:
            self.config = config
            self.autoscaler.update_config(config)

    def record(self, now: float, concurrency: float, requests: float = 0.0, queued: float = 0.0) -> None:
        self.autoscaler.record(now, concurrency, requests, queued)

    def desired(
        self,
        now: float,
        ready_replicas: int,
        reachable: bool = True,
        *,
        starting: int = 0,
        cold_start_s: float | None = None,
    ) -> int:
        """`reachable` is False when no traffic can arrive (weight 0): Knative then drops to min, not below.
        `starting` replicas are asked for but not ready; `cold_start_s` is the deployment's measured one."""
        if now - self.last_decision_at >= self.config.tick_interval:
            decision = self.autoscaler.decide(
                now, ready_replicas, reachable=reachable, starting=starting, cold_start_s=cold_start_s
            )
            self._apply(now, decision)
        return self.current

    def wake(self, now: float, ready_replicas: int = 0) -> None:
        if self.current == 0:
            self._apply(now, self.autoscaler.wake(now, ready_replicas))

    def _apply(self, now: float, decision: ScaleDecision) -> None:
        self.last_decision_at = now
        last = self.last
        changed = last is None or decision.desired != last.desired or decision.mode != last.mode
        self.last = decision
        if changed:
            self.history.appendleft(self._decision_json(now, decision))

    @staticmethod
    def _decision_json(now: float, decision: ScaleDecision) -> dict[str, Any]:
        return {
            "time": round(now, 3),
            "desired": decision.desired,
            "ready": decision.ready,
            "mode": decision.mode,
            "observedStable": round(decision.observed_stable, 3),
            "observedPanic": round(decision.observed_panic, 3),
            "boundedBy": decision.bounded_by,
            "excessBurstCapacity": decision.excess_burst_capacity,
            "reason": decision.reason,
        }

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scalingHistory": list(self.history)}
        if self.last is not None:
            out["lastScalingDecision"] = self._decision_json(self.last_decision_at, self.last)
        return out
