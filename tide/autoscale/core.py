"""The scaling decision core both drivers run: the live controller (tide/control/scaling.py) and
`tide sim` (tide/sim/engine.py). Pure: snapshots in, decisions out, the clock a parameter.

Per deployment, `ScalingCore` owns what used to be written once per driver:

* **tick gating**: decisions on a fixed grid every `tick_interval` seconds (Knative's 2 s ticker); a
  late call decides once and the grid keeps its phase, it does not catch up;
* **the wake at zero**: a request for a deployment at zero decides at once, off the grid (as Knative's
  activator pokes the autoscaler), and does not move the grid;
* **which replicas go**: `plan_scale` turns a desired count into replicas to start, take back (stop
  draining), stop now and drain, in one removal order: starting replicas first (they serve nobody),
  then ready ones with the fewest requests in flight, newest first on a tie.

`step` is the whole thing on one snapshot, for table-driven tests and drivers that poll.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import NamedTuple

from tide.autoscale.autoscaler import Autoscaler, ScaleDecision
from tide.autoscale.config import AutoscalerConfig
from tide.autoscale.policy import Parking


class ReplicaView(NamedTuple):
    """What the core needs to know of one replica (the drivers map theirs onto it)."""

    key: Hashable  # the driver's id or object
    ready: bool  # serving (False: still starting)
    in_flight: int = 0
    started: float = 0.0  # when it was asked for
    draining: bool = False  # on its way out: finishing its requests, taking no new ones


class ScalePlan(NamedTuple):
    start: int  # new replicas to start
    take_back: tuple[Hashable, ...] = ()  # draining replicas to serve again (before starting new ones)
    stop: tuple[Hashable, ...] = ()  # stop now: still starting, or ready and idle
    drain: tuple[Hashable, ...] = ()  # stop once their requests finish


class Decisions(NamedTuple):
    desired: int
    decision: ScaleDecision | None  # None: no new decision at this snapshot (between ticks)
    plan: ScalePlan


def removal_key(ready: bool, in_flight: int, started: float) -> tuple[bool, int, float]:
    """Sort key of the removal order: starting before ready, fewest in flight, newest first."""
    return (ready, in_flight, -started)


def removal_order(replicas: Iterable[ReplicaView]) -> list[ReplicaView]:
    return sorted(replicas, key=lambda r: removal_key(r.ready, r.in_flight, r.started))


def plan_scale(desired: int, replicas: Sequence[ReplicaView]) -> ScalePlan:
    """Replicas to start, take back, stop or drain so that `desired` serve or start. Draining replicas
    are taken back before new ones start (they are warm); removals follow `removal_order`."""
    serving = [r for r in replicas if not r.draining]
    missing = desired - len(serving)
    if missing > 0:
        draining = [r for r in replicas if r.draining]
        # The busiest draining replicas first: they are ready and their clients are already there.
        back = sorted(draining, key=lambda r: -r.in_flight)[:missing]
        return ScalePlan(missing - len(back), tuple(r.key for r in back))
    if missing == 0:
        return ScalePlan(0)
    stop: list[Hashable] = []
    drain: list[Hashable] = []
    for replica in removal_order(serving)[:-missing]:
        if not replica.ready or replica.in_flight == 0:
            stop.append(replica.key)
        else:
            drain.append(replica.key)
    return ScalePlan(0, (), tuple(stop), tuple(drain))


class ScalingCore:
    """One deployment's decisions: its Autoscaler (policy + wrapper), tick grid and wake at zero."""

    __slots__ = ("_next_tick", "autoscaler", "config", "last")

    def __init__(self, config: AutoscalerConfig, *, first_tick: float = 0.0) -> None:
        """`first_tick`: the first point of the tick grid (the controller: one tick after creating the
        deployment; the simulator: its time origin, so all deployments of a scenario tick together)."""
        self.config = config
        self.autoscaler = Autoscaler(config)
        self._next_tick = first_tick
        self.last: ScaleDecision | None = None

    @property
    def desired(self) -> int:
        """The replica count to run: the last decision's (a new deployment: max(min, initialScale))."""
        return self.autoscaler.applied

    def update_config(self, config: AutoscalerConfig) -> None:
        if config != self.config:
            self.config = config
            self.autoscaler.update_config(config)

    def record(self, now: float, load: float, requests: float = 0.0, queued: float = 0.0) -> None:
        """The load of the second that ends at `now` (time-averaged in flight + queued)."""
        self.autoscaler.record(now, load, requests, queued)

    def due(self, now: float) -> bool:
        return now >= self._next_tick - 1e-9

    def tick(
        self,
        now: float,
        ready: int,
        *,
        starting: int = 0,
        reachable: bool = True,
        cold_start_s: float | None = None,
        parking: Parking | None = None,
    ) -> ScaleDecision | None:
        """Decide if a tick is due (None otherwise)."""
        if not self.due(now):
            return None
        step = self.config.tick_interval
        # The next grid point after `now` (a driver that slept past several keeps the grid's phase).
        self._next_tick += (math.floor((now - self._next_tick) / step + 1e-9) + 1) * step
        decision = self.autoscaler.decide(
            now, ready, reachable=reachable, starting=starting, cold_start_s=cold_start_s, parking=parking
        )
        self.last = decision
        return decision

    def wake(self, now: float, ready: int = 0, *, parking: Parking | None = None) -> ScaleDecision | None:
        """A request arrived and nothing runs: decide now (None if replicas are already asked for)."""
        if self.autoscaler.applied != 0:
            return None
        decision = self.autoscaler.wake(now, ready, parking=parking)
        self.last = decision
        return decision

    def step(
        self,
        now: float,
        replicas: Sequence[ReplicaView],
        *,
        waiting: bool = False,
        reachable: bool = True,
        cold_start_s: float | None = None,
    ) -> Decisions:
        """One snapshot: `replicas` as they are, `waiting` when a request waits for this deployment."""
        ready = sum(1 for r in replicas if r.ready and not r.draining)
        starting = sum(1 for r in replicas if not r.ready and not r.draining)
        decision = self.wake(now, ready) if waiting and ready == 0 else None
        if decision is None:
            decision = self.tick(now, ready, starting=starting, reachable=reachable, cold_start_s=cold_start_s)
        desired = self.desired
        return Decisions(desired, decision, plan_scale(desired, replicas))
