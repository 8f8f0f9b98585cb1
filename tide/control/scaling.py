"""Per-deployment scaling state: feeds gateway load signals to the shared decision core, keeps its history.

The gateway's report is recorded every second (`record`), the core decides on its 2-s tick grid, and a
request at zero decides at once (`wake`). The controller runs `current` replicas.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

from tide.autoscale import Autoscaler, ScaleDecision
from tide.autoscale.core import ScalingCore
from tide.autoscale.policy import Parking
from tide.backends.base import ReplicaPhase, ReplicaState
from tide.spec import DeploymentSpec

HISTORY_LENGTH = 10


def measured_cold_start(replicas: Iterable[ReplicaState]) -> float | None:
    """Median seconds from asked-for to ready over the replicas that became ready (None: none yet). A
    replica that has woken from parking is left out: its `ready` time is the wake's, not the start's."""
    ready = ReplicaPhase.READY.value
    first = ReplicaPhase.WAITING_FOR_CAPACITY.value
    waking = ReplicaPhase.WAKING.value
    spans = [
        r.phase_times[ready] - r.phase_times[first]
        for r in replicas
        if ready in r.phase_times and first in r.phase_times and waking not in r.phase_times
    ]
    return statistics.median(spans) if spans else None


def measured_wake(replicas: Iterable[ReplicaState]) -> float | None:
    """Median seconds of the last wake over the replicas that have woken from parking (None: none yet)."""
    ready = ReplicaPhase.READY.value
    waking = ReplicaPhase.WAKING.value
    spans = [
        r.phase_times[ready] - r.phase_times[waking]
        for r in replicas
        if waking in r.phase_times and ready in r.phase_times and r.phase_times[ready] >= r.phase_times[waking]
    ]
    return statistics.median(spans) if spans else None


class DeploymentScaler:
    """The controller's driver of the shared decision core (tide/autoscale/core.py): the same tick grid,
    wake at zero and Autoscaler as `tide sim`. It adds only what the API shows: the decision history."""

    def __init__(self, spec: DeploymentSpec, now: float) -> None:
        self.config = spec.autoscaler_config()
        # The first decision one tick after the deployment is created (its replicas are starting).
        self.core = ScalingCore(self.config, first_tick=now + self.config.tick_interval)
        self.last_decision_at = now
        self.last: ScaleDecision | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LENGTH)
        self._keep_parked: int | None = None  # the last new decision's parked replicas to keep (not yet applied)

    @property
    def autoscaler(self) -> Autoscaler:
        return self.core.autoscaler

    def wakes_for_queue(self) -> bool:
        """Whether the policy wakes a parked replica at once for a request queued behind busy replicas."""
        return self.core.autoscaler.policy.wakes_for_queue()

    @property
    def current(self) -> int:
        """The replica count to run: the core's last decision (one number, kept there)."""
        return self.core.desired

    def resume(self, replicas: int) -> None:
        """Continue from the scale a previous controller decided (read back from the store after a
        restart), instead of the initial scale that only a new deployment starts at."""
        self.core.autoscaler.resume(replicas)

    def update_spec(self, spec: DeploymentSpec, now: float | None = None) -> None:
        """`now`: needed when the core rests (it first replays the skipped seconds under the old spec)."""
        config = spec.autoscaler_config()
        if config != self.config:
            self.config = config
            self.core.update_config(config, now)

    @property
    def resting(self) -> bool:
        return self.core.resting

    def rest(self, now: float, reachable: bool = True) -> bool:
        """At zero with nothing to decide until load arrives (`ScalingCore.rest`): True when the controller
        may stop recording and ticking it; its next record, tick or wake replays what was skipped."""
        return self.core.rest(now, reachable=reachable)

    def record(self, now: float, concurrency: float, requests: float = 0.0, queued: float = 0.0) -> None:
        """The gateway's report: in flight + queued, time-averaged over the second before `now`."""
        self.core.record(now, concurrency, requests, queued)

    def desired(
        self,
        now: float,
        ready_replicas: int,
        reachable: bool = True,
        *,
        starting: int = 0,
        cold_start_s: float | None = None,
        parking: Parking | None = None,
    ) -> int:
        """`reachable` is False when no traffic can arrive (weight 0): Knative then drops to min, not below.
        `starting` replicas are asked for but not ready; `cold_start_s` is the deployment's measured one;
        `parking` its parked replicas when a scale-down parks (the same context `tide sim` gives the policy)."""
        decision = self.core.tick(
            now, ready_replicas, starting=starting, reachable=reachable, cold_start_s=cold_start_s, parking=parking
        )
        if decision is not None:
            self._keep_parked = decision.keep_parked
            self._apply(now, decision)
        return self.current

    def take_keep_parked(self) -> int | None:
        """How many parked replicas the last new decision keeps (the rest stop, least recently parked
        first); None: no new decision, or the policy leaves them to the retention. Applied once."""
        keep, self._keep_parked = self._keep_parked, None
        return keep

    def wake(self, now: float, ready_replicas: int = 0, *, parking: Parking | None = None) -> None:
        decision = self.core.wake(now, ready_replicas, parking=parking)
        if decision is not None:
            self._keep_parked = decision.keep_parked
            self._apply(now, decision)

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
