"""Replay arrivals in virtual time through an `Autoscaler` and a replica model.

The decision core of `tide sim` (no file I/O, no wall clock). Each second the gateway's load (in
flight + queued, time-averaged over the second, as queue-proxy reports it) is recorded when the second
ends: the load of [s, s+1) is stamped s+1, as Knative stamps a report when it arrives. Every
`tick_interval` seconds (at a second boundary) the autoscaler decides and replicas are started or
stopped. A started replica is ready after `cold_start` seconds (sooner when it takes an engine from a
warm pool, as `tide up --warm-pool` keeps: `SimSettings.warm_pool`) and serves at most `concurrency`
requests at once; requests that find no free slot wait in one FIFO gateway queue. A request at zero wakes the autoscaler at once.
Tick gating, the wake at zero and which replicas go are the shared core's (tide/autoscale/core.py).

Parking (`parks`, as `autoscaling.parking` live, docs/PARKING.md): a replica that a scale-down removes
once it has been ready is parked instead of stopped. It costs `parked_cost` of a running replica per
second, a scale-up (or a request at zero) wakes the most recently parked first, ready after `wake_time`
instead of a cold start, and it is stopped after `parking_retention` parked. A policy may also ask that
a request finding no free replica wakes a parked one at once (`Policy.wakes_for_queue`).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from tide.autoscale import AutoscalerConfig, ScaleDecision
from tide.autoscale.core import ReplicaView, ScalePlan, ScalingCore, plan_scale
from tide.autoscale.policy import Parking
from tide.sim.result import PolicyResult, Timeline
from tide.spec.deployment import DEFAULT_PARKING_RETENTION_S

_READY, _DONE, _EXPIRE = 0, 1, 2


@dataclass(eq=False, slots=True)
class Replica:
    started: float
    ready: bool = False
    in_flight: int = 0
    draining: bool = False
    stopped: bool = False
    ready_at: float = 0.0  # when the pending start or wake completes (an older _READY event is stale)
    resident: bool = False  # has been ready: its engine holds the model, so a scale-down can park it
    parked_since: float | None = None  # parked (not in `Replay.replicas`) since then


@dataclass(frozen=True)
class SimSettings:
    cold_start: float = 15.0
    slo: float = 2.0
    sample_step: float = 1.0  # timeline resolution for the plot
    wake_time: float = 1.0  # a parked replica's wake, instead of a cold start
    parked_cost: float = 0.05  # a parked replica's cost per second, as a fraction of a running one
    parking_retention: float = DEFAULT_PARKING_RETENTION_S  # parked longer than this: stopped
    # Engines kept started ahead of need (`tide up --warm-pool`, default 1 there): a start takes the one
    # furthest along and is ready `warm_start` after it is asked for once that engine has imported its
    # runtime (`cold_start - warm_start` after it was spawned), or `cold_start` after its spawn if it was
    # still importing; the pool spawns a replacement at once. 0: every start is a cold start.
    warm_pool: int = 0
    warm_start: float = 1.0


class Replay:
    """State of one replay; `run` drives it second by second.

    The request side (queue, dispatch, completions, load accounting) is shared with the multi-deployment
    replay (`contention.py`), which subclasses this and overrides how replicas start and stop.
    """

    def __init__(
        self,
        config: AutoscalerConfig,
        arrivals: list[float],
        durations: list[float],
        settings: SimSettings,
        parks: bool = False,
    ):
        self.core = ScalingCore(config)
        self.scaler = self.core.autoscaler
        self.limit = config.concurrency
        self.tick = max(1, round(config.tick_interval))
        self.arrivals = arrivals
        self.durations = durations
        self.cold_start = settings.cold_start
        self.warm_start = min(settings.warm_start, settings.cold_start)
        self.pool = [-math.inf] * settings.warm_pool  # spawn times of the pooled engines, oldest first
        self.events: list[tuple[float, int, int, object]] = []
        self.seq = 0
        self.queue: deque[int] = deque()
        self.waits = np.zeros(len(arrivals))
        self.replicas: list[Replica] = []  # not stopped: starting, ready or draining
        self.cost = 0.0
        self.cold_starts = 0
        self.peak = 0
        self.done = 0
        self.load = 0  # in flight + queued
        self.area = 0.0  # load x seconds within the current second
        self.arrived = 0  # requests that arrived within the current second
        self.queued_area = 0.0  # of which queued at the gateway
        self.area_since = 0.0
        self.last_completion = 0.0
        self.parks = parks
        self.parked: list[Replica] = []  # most recently parked last
        self.parked_seconds = 0.0
        self.wakes = 0
        self.wake_time = settings.wake_time
        self.parked_cost = settings.parked_cost
        self.retention = settings.parking_retention

    # -- load accounting -------------------------------------------------------------------
    def _advance(self, t: float) -> None:
        dt = t - self.area_since
        self.area += self.load * dt
        if self.queue:
            self.queued_area += len(self.queue) * dt
        self.area_since = t

    def end_second(self, second: int, boundary: float) -> ScaleDecision | None:
        """Close second [second, boundary): record its time-averaged load stamped at `boundary`, and decide
        when `boundary` is a tick. Returns the decision, None between ticks."""
        self._advance(boundary)
        if self.replicas or self.area or self.queued_area:  # no replica, no request: no data (as live)
            self.core.record(boundary, self.area, self.arrived, self.queued_area)
        self.area = self.queued_area = 0.0
        self.arrived = 0
        if not self.core.due(boundary):
            return None
        return self.core.tick(
            boundary,
            self._ready_replicas(),
            starting=self._starting_replicas(),
            cold_start_s=self.cold_start,
            parking=self._parking() if self.parks else None,
        )

    def _parking(self) -> Parking:
        since = tuple(r.parked_since for r in self.parked if r.parked_since is not None)
        return Parking(len(self.parked), self.wake_time, self.retention, self.parked_cost, since)

    # -- replicas ---------------------------------------------------------------------------
    def _ready_replicas(self) -> int:
        return sum(1 for r in self.replicas if r.ready and not r.draining)

    def _starting_replicas(self) -> int:
        return sum(1 for r in self.replicas if not r.ready)

    def _stop(self, replica: Replica, t: float) -> None:
        replica.stopped = True
        self.cost += t - replica.started
        self.replicas.remove(replica)

    def _retire(self, replica: Replica, t: float) -> None:
        """A scale-down takes `replica` (idle, or still starting): park it where parking is on and its
        engine holds the model (ready once: a cold start still loading is simply stopped), else stop it."""
        if not (self.parks and replica.resident):
            self._stop(replica, t)
            return
        self.cost += t - replica.started
        self.replicas.remove(replica)
        replica.ready = replica.draining = False
        replica.parked_since = t
        self.parked.append(replica)
        self._push(t + self.retention, _EXPIRE, replica)

    def _unpark(self, replica: Replica, t: float) -> None:
        """Account for `replica`'s parked time up to `t` and take it off the parked list."""
        since = replica.parked_since
        assert since is not None
        self.parked_seconds += t - since
        self.cost += self.parked_cost * (t - since)
        replica.parked_since = None
        self.parked.remove(replica)

    def _wake_parked(self, replica: Replica, t: float) -> None:
        self._unpark(replica, t)
        self.wakes += 1
        replica.started = t
        replica.ready_at = t + self.wake_time
        self.replicas.append(replica)
        self._push(replica.ready_at, _READY, replica)

    def _scale_to(self, desired: int, t: float) -> None:
        if desired == len(self.replicas) and not any(r.draining for r in self.replicas):
            return  # the usual tick: nothing to change
        self._apply(plan_scale(desired, self._views()), t)

    def _views(self) -> list[ReplicaView]:
        """The replicas as the core's plan sees them."""
        return [ReplicaView(r, r.ready, r.in_flight, r.started, r.draining) for r in self.replicas]

    def _apply(self, plan: ScalePlan, t: float) -> None:
        for replica in plan.take_back:
            replica.draining = False  # type: ignore[attr-defined]
        woken = min(plan.start, len(self.parked))
        for _ in range(woken):  # parked replicas first, the most recently parked first
            self._wake_parked(self.parked[-1], t)
        for _ in range(plan.start - woken):
            self._add_replica(t)
        if plan.start:
            self.peak = max(self.peak, len(self.replicas))
        for replica in plan.stop:
            self._retire(replica, t)  # type: ignore[arg-type]
        for replica in plan.drain:
            replica.draining = True  # type: ignore[attr-defined]

    def _add_replica(self, t: float) -> None:
        replica = Replica(started=t)
        self.replicas.append(replica)
        self._cold_start(replica, t)

    def _cold_start(self, replica: Replica, t: float) -> None:
        replica.started = t
        replica.ready_at = t + self.cold_start
        if self.pool:  # a pooled engine, the one spawned first; the pool spawns its replacement now
            spawned = self.pool.pop(0)
            self.pool.append(t)
            replica.ready_at = max(t + self.warm_start, spawned + self.cold_start)
        self.cold_starts += 1
        self._push(replica.ready_at, _READY, replica)

    def _push(self, t: float, kind: int, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, payload))

    # -- requests ---------------------------------------------------------------------------
    def _start(self, index: int, replica: Replica, t: float) -> None:
        replica.in_flight += 1
        self.waits[index] = t - self.arrivals[index]
        self._push(t + self.durations[index], _DONE, replica)

    def _free_replica(self) -> Replica | None:
        best: Replica | None = None
        for replica in self.replicas:
            if (
                replica.ready
                and not replica.draining
                and replica.in_flight < self.limit
                and (best is None or replica.in_flight < best.in_flight)
            ):
                best = replica
        return best

    def _dispatch(self, t: float) -> None:
        while self.queue:
            replica = self._free_replica()
            if replica is None:
                return
            self._start(self.queue.popleft(), replica, t)

    def _arrive(self, index: int, t: float) -> None:
        self._advance(t)
        self.load += 1
        self.arrived += 1
        replica = self._free_replica() if not self.queue else None
        if replica is not None:
            self._start(index, replica, t)
        else:
            self.queue.append(index)
        if not self.replicas:
            self._wake(t)
        elif self.queue and self.parked and self.parks and self.scaler.policy.wakes_for_queue():
            self._wake_for_queue(t)

    def _wake_for_queue(self, t: float) -> None:
        """Wake parked replicas for the requests queued beyond the room that starting replicas will bring."""
        coming = sum(1 for r in self.replicas if not r.ready) * self.limit
        missing = math.ceil((len(self.queue) - coming) / self.limit)
        for _ in range(min(missing, len(self.parked))):
            self._wake_parked(self.parked[-1], t)
        self.peak = max(self.peak, len(self.replicas))

    def _wake(self, t: float) -> None:
        """A request at zero: decide at once, so the first replica starts without waiting for a tick."""
        decision = self.core.wake(t, 0, parking=self._parking() if self.parks else None)
        if decision is not None:
            self._decided(decision, t)

    def _decided(self, decision: ScaleDecision, t: float) -> None:
        """Apply a decision: scale to its count, then stop the parked replicas it does not keep (the least
        recently parked first), as the controller does."""
        self._scale_to(decision.desired, t)
        keep = decision.keep_parked
        if keep is not None and self.parks:
            while len(self.parked) > keep:
                replica = self.parked[0]
                self._unpark(replica, t)
                replica.stopped = True

    def _event(self, t: float, kind: int, replica: Replica) -> None:
        if replica.stopped:
            return
        if kind == _EXPIRE:
            since = replica.parked_since
            if since is not None and t >= since + self.retention - 1e-9:  # else woken since: stale
                self._unpark(replica, t)
                replica.stopped = True
            return
        if kind == _READY:
            if replica.parked_since is not None or t != replica.ready_at:
                return  # parked again (or woken again) since this start began
            replica.ready = replica.resident = True
            if self.queue:
                self._advance(t)  # the queue shrinks: close its area so far
            self._dispatch(t)
            return
        self._advance(t)
        self.load -= 1
        self.done += 1
        self.last_completion = t
        replica.in_flight -= 1
        if replica.draining:
            if replica.in_flight == 0:
                self._retire(replica, t)
        elif self.queue:
            self._start(self.queue.popleft(), replica, t)

    # -- main loop --------------------------------------------------------------------------
    def run(self, sample_step: float) -> tuple[float, Timeline]:
        arrivals, events = self.arrivals, self.events
        total = len(arrivals)
        timeline = Timeline(step=sample_step)
        next_sample = 0.0
        i = 0
        second = math.floor(arrivals[0]) if total else 0
        self.area_since = float(second)
        while self.done < total:
            boundary = second + 1.0
            while True:
                next_arrival = arrivals[i] if i < total else math.inf
                next_event = events[0][0] if events else math.inf
                if next_event <= next_arrival:
                    if next_event >= boundary:
                        break
                    t, _, kind, payload = heapq.heappop(events)
                    self._event(t, kind, payload)  # type: ignore[arg-type]
                else:
                    if next_arrival >= boundary:
                        break
                    self._arrive(i, next_arrival)
                    i += 1
            decision = self.end_second(second, boundary)
            if decision is not None:
                self._decided(decision, boundary)
            if boundary >= next_sample:
                timeline.times.append(boundary)
                timeline.load.append(float(self.load))
                timeline.replicas.append(len(self.replicas))
                next_sample = boundary + sample_step
            second += 1
            if not self.replicas and not self.queue and i < total and self.load == 0:
                # Idle at zero: nothing to record (as with no pods in Knative); skip to the next request.
                if not timeline.times or timeline.times[-1] != boundary:
                    timeline.times.append(boundary)
                    timeline.load.append(0.0)
                    timeline.replicas.append(0)
                resume = math.floor(arrivals[i])
                wanted = self.scaler.policy.next_decision_at(float(second))
                if wanted is not None:  # the policy wants to decide before then (a pre-warm)
                    resume = min(resume, math.floor(wanted) // self.tick * self.tick)
                second = max(second, resume)
                self.area_since = float(second)
        horizon = max(self.last_completion, arrivals[-1] if total else 0.0)
        for replica in list(self.replicas):
            self._stop(replica, max(horizon, replica.started))
        for replica in list(self.parked):  # parked until the end (or their retention, if sooner)
            since = replica.parked_since or 0.0
            self._unpark(replica, max(since, min(horizon, since + self.retention)))
        return horizon, timeline

    def policy_result(
        self, policy: str, slo: float, timeline: Timeline, horizon: float, description: str
    ) -> PolicyResult:
        """What the replay cost and how long its requests waited, as the report tables read it."""
        return PolicyResult(
            policy=policy,
            replica_seconds=self.cost,
            requests=self.done,
            cold_starts=self.cold_starts,
            waits=self.waits,
            peak_replicas=self.peak,
            slo=slo,
            timeline=timeline,
            horizon=horizon,
            description=description,
            parked_seconds=self.parked_seconds,
            wakes=self.wakes,
        )


def replay(
    policy: str,
    config: AutoscalerConfig,
    arrivals: list[float],
    durations: list[float],
    settings: SimSettings,
    description: str = "",
    parks: bool = False,
) -> PolicyResult:
    """Replay `arrivals` (sorted seconds) with per-request `durations` under one autoscaler config;
    `parks`: its scale-down parks replicas (settings' wake time, parked cost and retention)."""
    state = Replay(config, arrivals, durations, settings, parks)
    horizon, timeline = state.run(settings.sample_step)
    return state.policy_result(policy, settings.slo, timeline, horizon, description)
