"""Per-deployment scaling state: feeds gateway load signals to the pure autoscaler, keeps its history.

The gateway is sampled every second (`record`), the autoscaler decides every `tick_interval` (2 s), and a
request at zero decides at once (`wake`). The controller applies `current` within min/max.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tide.autoscale import Autoscaler, ScaleDecision
from tide.spec import DeploymentSpec

HISTORY_LENGTH = 10


class DeploymentScaler:
    def __init__(self, spec: DeploymentSpec, now: float) -> None:
        self.config = spec.autoscaler_config()
        self.autoscaler = Autoscaler(self.config)
        self.current = min(self.config.max_replicas, max(self.config.min_replicas, self.config.initial_scale))
        self.last_decision_at = now
        self.last: ScaleDecision | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LENGTH)

    def resume(self, replicas: int) -> None:
        """Continue from the scale a previous controller decided (read back from the store after a
        restart), instead of the initial scale that only a new deployment starts at."""
        self.current = min(self.config.max_replicas, max(self.config.min_replicas, replicas))

    def update_spec(self, spec: DeploymentSpec) -> None:
        config = spec.autoscaler_config()
        if config != self.config:
            self.config = config
            self.autoscaler.update_config(config)
            self.current = min(config.max_replicas, max(config.min_replicas, self.current))

    def record(self, now: float, concurrency: float, requests: float = 0.0) -> None:
        self.autoscaler.record(now, concurrency, requests)

    def desired(self, now: float, ready_replicas: int, reachable: bool = True) -> int:
        """`reachable` is False when no traffic can arrive (weight 0): Knative then drops to min, not below."""
        if now - self.last_decision_at >= self.config.tick_interval:
            self._apply(now, self.autoscaler.decide(now, ready_replicas, reachable=reachable))
        return self.current

    def wake(self, now: float, ready_replicas: int = 0) -> None:
        if self.current == 0:
            self._apply(now, self.autoscaler.wake(now, ready_replicas))

    def _apply(self, now: float, decision: ScaleDecision) -> None:
        self.last_decision_at = now
        changed = decision.desired != self.current or self.last is None or decision.mode != self.last.mode
        self.current = decision.desired
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
