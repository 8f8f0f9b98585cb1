"""One deployment inside a contention replay: requests as in `Replay`, replicas from the scheduler.

The request side (gateway queue, dispatch, load recorded once a second, the `Autoscaler`) is the
single-trace replay's, inherited from `Replay`. Replicas are started only where the scheduler placed
them, hold their GPUs in the shared `GpuLedger`, and may be preempted. `ContentionReplay` drives it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tide.autoscale import ScaleDecision
from tide.autoscale.core import ReplicaView, ScalingCore, plan_scale
from tide.scheduling import Placement
from tide.sim.contention_result import DeploymentOutcome
from tide.sim.engine import Replay, Replica, SimSettings
from tide.sim.gpus import GpuLedger
from tide.sim.result import Timeline
from tide.sim.scenario import DeploymentScenario


@dataclass(eq=False, slots=True)
class PlacedReplica(Replica):
    replica_id: str = ""
    instance_id: str = ""
    gpus: int = 1
    since: float = 0.0  # when the scheduler placed it (its preemption order: newest first)
    owner: DeploymentReplay | None = None
    holding: bool = False  # has its GPUs; False while waiting for a preempted replica to drain
    preempted: bool = False


@dataclass(frozen=True)
class Workload:
    """One deployment's requests: sorted arrival times (scenario seconds) and service times. `origin` is
    the trace's time zero (its offset): decision ticks count from there, as in a replay of the trace alone."""

    arrivals: list[float]
    durations: list[float]
    origin: float = 0.0


class DeploymentReplay(Replay):
    def __init__(
        self,
        spec: DeploymentScenario,
        workload: Workload,
        settings: SimSettings,
        gpus: GpuLedger[PlacedReplica],
        on_wake: Callable[[float], None],
    ) -> None:
        super().__init__(spec.config, workload.arrivals, workload.durations, settings)
        self.spec = spec
        self.gpus = gpus
        self.on_wake = on_wake  # a request at zero asks for a scheduling pass at once
        self.by_id: dict[str, PlacedReplica] = {}
        self.desired = 0
        self.next_index = 0
        self.origin = math.floor(workload.origin)
        # Every deployment of a scenario ticks on the same grid, from the scenario's origin.
        self.core = ScalingCore(spec.config, first_tick=float(self.origin))
        self.scaler = self.core.autoscaler
        # Records and decides from this second on: it joins at its first request, and skips ahead
        # while idle at zero.
        self.resume_at = math.floor(workload.arrivals[0])
        self.finished = False
        self.horizon = 0.0
        self.preemptions = 0
        self.pending = 0
        self.peak_pending = 0
        self.pending_since: float | None = None
        self.pending_seconds = 0.0
        self.drain_wait = 0.0  # replica-seconds placed but waiting for a preempted replica to drain
        self.timeline = Timeline(step=settings.sample_step)
        self._numbers = 0

    # -- the clock ---------------------------------------------------------------------------------
    def next_time(self) -> float:
        arrival = self.arrivals[self.next_index] if self.next_index < len(self.arrivals) else math.inf
        return min(arrival, self.events[0][0]) if self.events else arrival

    def step(self) -> None:
        """Handle the earliest event or arrival (events first on a tie, as `Replay.run`)."""
        index = self.next_index
        arrival = self.arrivals[index] if index < len(self.arrivals) else math.inf
        if self.events and self.events[0][0] <= arrival:
            t, _, kind, payload = heapq.heappop(self.events)
            self._event(t, kind, payload)  # type: ignore[arg-type]
        else:
            self.next_index = index + 1
            self._arrive(index, arrival)

    def end_second(self, second: int, boundary: float) -> ScaleDecision | None:
        decision = super().end_second(second, boundary)
        if decision is not None:
            self.desired = decision.desired
        return decision

    def sleep_if_idle(self, second: int) -> None:
        """Idle at zero: skip to the next request's second (nothing recorded, as with no pods in Knative)."""
        if self.replicas or self.queue or self.load or self.desired or self.next_index >= len(self.arrivals):
            return
        self.resume_at = max(second, math.floor(self.arrivals[self.next_index]))
        self.area_since = float(self.resume_at)

    @property
    def complete(self) -> bool:
        return self.done == len(self.arrivals)

    # -- what the scheduler sees and decides ---------------------------------------------------------
    def _serving(self) -> list[Replica]:
        return [r for r in self.replicas if not r.draining]

    def needs_pass(self) -> bool:
        return self.pending > 0 or len(self._serving()) != self.desired

    def settle(self, t: float) -> None:
        """Apply a scale-down now; on a scale-up take back draining replicas (the rest comes from the scheduler)."""
        self._apply(plan_scale(self.desired, self._views())._replace(start=0), t)

    def request_size(self) -> int:
        # Scaled-down replicas keep their GPUs until their requests finish (the controller's "holding").
        # Preempted ones are not asked for again: their GPUs are their preemptor's already.
        return self.desired + sum(1 for r in self.replicas if r.draining and not self._preempted(r))

    def gpus_held(self) -> int:
        """GPUs its replicas hold now (not those waiting for a preempted replica to drain)."""
        return sum(r.gpus for r in self.by_id.values() if r.holding)

    def placements(self) -> list[Placement]:
        # A preempted replica's GPUs already belong to its preemptor in the scheduler's books.
        return [
            Placement(self.spec.name, r.replica_id, r.instance_id, r.gpus, r.since)
            for r in self.by_id.values()
            if not r.preempted
        ]

    def preempt(self, replica_id: str, t: float, counted: bool = True) -> None:
        replica = self.by_id.get(replica_id)
        if replica is None:
            return
        if counted:
            self.preemptions += 1
        replica.preempted = True
        if replica.ready and replica.in_flight:
            replica.draining = True
        else:
            self._stop(replica, t)

    def start(self, slots: Sequence[Placement], t: float) -> None:
        # The scheduler may re-place draining replicas it preempted; only what `desired` lacks is started.
        room = self.desired - len(self._serving())
        for slot in slots[: max(0, room)]:
            self._numbers += 1
            replica = PlacedReplica(
                started=t,
                replica_id=f"{self.spec.name}/{self._numbers}",
                instance_id=slot.instance_id,
                gpus=slot.gpus,
                since=t,
                owner=self,
            )
            self.replicas.append(replica)
            self.by_id[replica.replica_id] = replica
            if self.gpus.acquire(replica):
                self.begin(replica, t)

    def begin(self, replica: PlacedReplica, t: float) -> None:
        """The replica has its GPUs: the cold start (and billing) begins."""
        replica.holding = True
        self.drain_wait += t - replica.since
        self._cold_start(replica, t)
        self.peak = max(self.peak, sum(1 for r in self.by_id.values() if r.holding))

    def set_pending(self, count: int, t: float) -> None:
        if count and self.pending_since is None:
            self.pending_since = t
        elif not count and self.pending_since is not None:
            self.pending_seconds += t - self.pending_since
            self.pending_since = None
        self.pending = count
        self.peak_pending = max(self.peak_pending, count)

    # -- Replay hooks --------------------------------------------------------------------------------
    def _wake(self, t: float) -> None:
        if self.desired:
            return  # already waiting for capacity: the next pass places it
        decision = self.core.wake(t, 0)
        if decision is None:
            return
        self.desired = decision.desired
        self.on_wake(t)

    def _views(self) -> list[ReplicaView]:
        # A preempted replica drains for its preemptor: it cannot be taken back.
        return [v for v in super()._views() if not (v.draining and self._preempted(v.key))]  # type: ignore[arg-type]

    def _stop(self, replica: Replica, t: float, billed_until: float | None = None) -> None:
        assert isinstance(replica, PlacedReplica)
        replica.stopped = True
        self.replicas.remove(replica)
        del self.by_id[replica.replica_id]
        if not replica.holding:
            self.drain_wait += t - replica.since
            self.gpus.cancel(replica)
            return
        self.cost += (t if billed_until is None else billed_until) - replica.started
        for waiter in self.gpus.release(replica):
            assert waiter.owner is not None
            waiter.owner.begin(waiter, t)

    @staticmethod
    def _preempted(replica: Replica) -> bool:
        return isinstance(replica, PlacedReplica) and replica.preempted

    # -- the end -------------------------------------------------------------------------------------
    def finish(self, t: float) -> None:
        """Every request served: bill up to the last completion (as a single replay) and free the GPUs."""
        self.horizon = max(self.last_completion, self.arrivals[-1])
        for replica in list(self.replicas):
            self._stop(replica, t, billed_until=max(self.horizon, replica.started))
        self.set_pending(0, max(self.horizon, self.pending_since or 0.0))
        self.finished = True

    def outcome(self, slo: float) -> DeploymentOutcome:
        result = self.policy_result(self.spec.name, slo, self.timeline, self.horizon, self.spec.trace.path)
        return DeploymentOutcome(
            name=self.spec.name,
            priority=self.spec.config.priority,
            gpu_count=self.spec.gpu_count,
            result=result,
            preemptions=self.preemptions,
            pending_seconds=self.pending_seconds,
            peak_pending=self.peak_pending,
            drain_wait_seconds=self.drain_wait,
        )
