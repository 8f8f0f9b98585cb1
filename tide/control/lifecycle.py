"""Pure lifecycle decisions: which replicas to start or remove, and what state and conditions to show.

Kept apart from the reconcile loop (which does the I/O) so the rules can be tested on plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tide.autoscale.core import removal_key
from tide.backends.base import ReplicaPhase, ReplicaState
from tide.timing import RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_MIN_S

CRASH_LOOP_THRESHOLD = 3  # crashes in a row without becoming ready: the deployment is in ERROR


def restart_backoff(consecutive_failures: int) -> float:
    """1 s, 2 s, 4 s, ... capped at 60 s."""
    if consecutive_failures <= 0:
        return 0.0
    return float(min(RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_MIN_S * 2 ** (consecutive_failures - 1)))


def route_failure(failure: str | None, crash_message: str | None, consecutive_crashes: int) -> str | None:
    """What the gateway answers a request for a deployment with no ready replica that is known to be
    failing (a replica could not start, or the engine is in a crash loop), or None while it may still
    come up."""
    if failure:
        return failure
    if consecutive_crashes >= CRASH_LOOP_THRESHOLD and crash_message:
        return crash_message
    return None


@dataclass(frozen=True)
class RolloutPlan:
    start: int  # new replicas of the current template to start
    remove: tuple[str, ...]  # replica ids to drain and stop, in order


def plan_rollout(
    replicas: Sequence[ReplicaState],
    template: tuple[object, ...],
    desired: int,
    in_flight: dict[str, int],
    can_start: bool = True,
) -> RolloutPlan:
    """Surge-first rollout and scale-down choice.

    New replicas of the current template are started up to `desired`; an old-template replica is removed
    only once enough current ones are ready to take its place, so serving never dips during an update.
    When scaling down, replicas still starting go before ready ones, and idle ones before busy ones.
    """
    live = [r for r in replicas if not r.phase.terminal and r.phase is not ReplicaPhase.DRAINING]
    current = [r for r in live if r.template == template]
    old = [r for r in live if r.template != template]
    ready_current = sum(1 for r in current if r.phase is ReplicaPhase.READY)

    start = max(0, desired - len(current)) if can_start else 0
    remove: list[str] = []

    def removal_order(rs: list[ReplicaState]) -> list[ReplicaState]:
        # The shared core's order (tide/autoscale/core.py), as the simulator removes replicas.
        return sorted(
            rs,
            key=lambda r: removal_key(
                r.phase is ReplicaPhase.READY,
                in_flight.get(r.replica_id, 0),
                r.phase_times.get(ReplicaPhase.WAITING_FOR_CAPACITY.value, 0.0),
            ),
        )

    if len(current) > desired:
        remove += [r.replica_id for r in removal_order(current)[: len(current) - desired]]
    # Old replicas: not-ready ones serve nobody, remove them now; ready ones only as new ones are ready.
    old_ready = [r for r in old if r.phase is ReplicaPhase.READY]
    remove += [r.replica_id for r in old if r.phase is not ReplicaPhase.READY]
    keep_old = max(0, desired - ready_current)
    if len(old_ready) > keep_old:
        remove += [r.replica_id for r in removal_order(old_ready)[: len(old_ready) - keep_old]]
    return RolloutPlan(start=start, remove=tuple(remove))


@dataclass
class Condition:
    type: str
    message: str
    reason: str = ""
    status: str = "True"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason or self.type,
            "message": self.message,
            "lastTransitionTime": now,
        }


@dataclass
class DeploymentView:
    """What the status is computed from (plain data, no I/O)."""

    deleting: bool
    disabled: bool
    external: bool
    desired: int
    template: tuple[object, ...]
    replicas: Sequence[ReplicaState]
    failure: str | None = None  # a replica could not start (weights, engine): its message
    crash_message: str | None = None
    consecutive_crashes: int = 0
    ever_ready_this_generation: bool = False
    spec_error: str | None = None
    waiting_for_capacity: str | None = None  # the scheduler's message: what exactly is missing
    lost_message: str | None = None  # a replica's machine went away (a lost node)
    conditions: list[Condition] = field(default_factory=list)


def describe_starting(replica: ReplicaState) -> str:
    phase = replica.phase
    if phase is ReplicaPhase.DOWNLOADING_WEIGHTS:
        progress = replica.progress or {}
        percent = progress.get("percent")
        return f"downloading weights: {percent:.0f}%" if isinstance(percent, int | float) else "downloading weights"
    if phase is ReplicaPhase.ENGINE_LOAD:
        return "loading the model"
    if phase is ReplicaPhase.WAITING_FOR_CAPACITY:
        return replica.message or "waiting for capacity"
    if phase is ReplicaPhase.WAKING:
        return "waking from parked"
    return phase.value


def compute_state(view: DeploymentView) -> tuple[str, list[Condition]]:
    """STATUS_* and the conditions that explain it, in words a user can act on."""
    conditions = list(view.conditions)
    # Parked replicas serve nobody and hold no GPU: they are shown apart (the Parked condition).
    parked = [r for r in view.replicas if r.phase.resting]
    live = [r for r in view.replicas if not r.phase.terminal and not r.phase.resting]
    ready = [r for r in live if r.phase is ReplicaPhase.READY]
    ready_current = [r for r in ready if r.template == view.template]
    old_live = [r for r in live if r.template != view.template and r.phase is not ReplicaPhase.DRAINING]
    starting = [r for r in live if r.phase.starting or r.phase is ReplicaPhase.WAKING]

    if view.spec_error:
        conditions.append(Condition("SpecInvalid", view.spec_error))
        return "STATUS_ERROR", conditions
    if view.deleting:
        conditions.append(Condition("Deleting", f"draining {len(live)} replica(s) before removal"))
        return "STATUS_DELETING", conditions
    if view.external:
        return "STATUS_READY", conditions
    if view.disabled:
        conditions.append(Condition("Disabled", "disabled: true; replicas are stopped, the configuration is kept"))
        return "STATUS_READY", conditions
    if view.failure and not ready:
        conditions.append(Condition("ReplicaFailed", view.failure))
        return "STATUS_FAILED", conditions
    if view.waiting_for_capacity:
        conditions.append(Condition("WaitingForCapacity", view.waiting_for_capacity))
    if view.lost_message:
        conditions.append(Condition("ReplicaLost", view.lost_message))
    if view.crash_message and view.consecutive_crashes:
        conditions.append(Condition("ReplicaCrashed", view.crash_message))
    for replica in starting:
        conditions.append(Condition("Progressing", f"replica {replica.replica_id}: {describe_starting(replica)}"))
    if parked:
        conditions.append(Condition("Parked", f"{len(parked)} replica(s) parked: a scale-up wakes them first"))
    if view.desired == 0 and not live:
        conditions.append(Condition("ScaledToZero", "no replicas: the next request starts one"))
        return "STATUS_READY", conditions
    if old_live and (view.ever_ready_this_generation or ready):
        return "STATUS_UPDATING", conditions
    if ready_current or (ready and not old_live):
        if view.consecutive_crashes >= CRASH_LOOP_THRESHOLD and len(ready) < view.desired:
            return "STATUS_ERROR", conditions
        return "STATUS_READY", conditions
    if view.consecutive_crashes >= CRASH_LOOP_THRESHOLD:
        return "STATUS_ERROR" if view.ever_ready_this_generation else "STATUS_FAILED", conditions
    if old_live:
        return "STATUS_UPDATING", conditions
    return "STATUS_CREATING", conditions
