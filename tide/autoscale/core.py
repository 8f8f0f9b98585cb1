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

**Rest at zero** (for drivers with thousands of idle deployments): once a deployment sits at zero with
no load in its windows, `rest` lets the driver stop calling `tick` for it (it has no replica, so it
records nothing: see `record`). The next `record`, `tick`, `wake` or `update_config` first replays the
skipped ticks over the policy's longest window (`resume`); older ones changed nothing a later decision
reads, so every decision
is the one the core would have made had it been driven every second (tests/autoscale/test_core_rest.py
drives both side by side).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import NamedTuple

from tide.autoscale.autoscaler import NO_METRICS_NOTE, Autoscaler, ScaleDecision
from tide.autoscale.config import AutoscalerConfig
from tide.autoscale.policy import Parking
from tide.autoscale.reconcile import Activity


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

    __slots__ = ("_decided_at", "_loaded_at", "_next_tick", "_rest", "autoscaler", "config", "last")

    def __init__(self, config: AutoscalerConfig, *, first_tick: float = 0.0) -> None:
        """`first_tick`: the first point of the tick grid (the controller: one tick after creating the
        deployment; the simulator: its time origin, so all deployments of a scenario tick together)."""
        self.config = config
        self.autoscaler = Autoscaler(config)
        self._next_tick = first_tick
        self.last: ScaleDecision | None = None
        self._decided_at = -math.inf  # when `last` was decided
        self._loaded_at = -math.inf  # the last record of any load (in flight, queued or requests)
        self._rest: tuple[float, bool] | None = None  # resting: (first skipped second, reachable)

    # -- rest at zero ---------------------------------------------------------------------------------

    def can_rest(self) -> bool:
        """At zero and nothing to decide until load arrives: the last tick decided 0 from windows of zeros
        (or from no data at all: at zero with no replica the drivers record nothing), nothing ready, no load
        recorded since, and a policy whose decisions zero load cannot move."""
        last = self.last
        scaler = self.autoscaler
        return (
            last is not None
            and last.desired == 0
            and last.ready == 0
            and (last.note is None or last.note.startswith(NO_METRICS_NOTE))  # not a wake
            and last.observed_stable == 0.0
            and last.observed_panic == 0.0
            and last.activity is Activity.INACTIVE
            and scaler.applied == 0
            and scaler.last is last
            and self._loaded_at < self._decided_at
            and scaler.policy.rests_at_zero
        )

    @property
    def resting(self) -> bool:
        return self._rest is not None

    def rest(self, now: float, *, reachable: bool = True) -> bool:
        """From `now` on the driver skips `record(now, 0)` and `tick` (ready 0, nothing starting) until there
        is load or a change; True when it may (`can_rest`). `reachable` as the skipped ticks would pass it."""
        if self._rest is None:
            if not self.can_rest():
                return False
            self._rest = (now, reachable)
        return True

    def resume(self, now: float) -> None:
        """Replay what a driver calling every second would have done since `rest` (record 0, then tick when
        due), over the last `replay_s` seconds before `now`; the record and tick at `now` are the caller's."""
        if self._rest is None:
            return
        since, reachable = self._rest
        self._rest = None
        span = self.replay_s()
        first = since + max(0, math.ceil(now - span - since))  # the driver's seconds keep their phase
        step = self.config.tick_interval
        if self._next_tick < first:
            # The ticks before the replay decided 0 again and again; all they moved is a rate period's anchor
            # (at the driver's seconds: the first one at or after each grid point).
            grid0, skipped = self._next_tick, math.ceil((first - self._next_tick) / step - 1e-9)

            def tick_after(t: float) -> float | None:
                j = max(0, math.ceil((t - 1.0 - grid0) / step - 1e-9))
                while j < skipped:
                    at = since + max(0, math.ceil(grid0 + j * step - since - 1e-9))
                    if at >= t:
                        return at
                    j += 1
                return None

            self.autoscaler.skip_idle_ticks(tick_after)
            self._next_tick += skipped * step
        t = first
        while t < now - 1e-9:  # no record: a resting deployment has no replica (see `record`)
            self.tick(t, 0, reachable=reachable)
            t += 1.0

    def replay_s(self) -> float:
        """Seconds of zero load that restore every window a decision reads (the stable window is the longest
        of the ones that can hold load; the scale-down delay window holds only the 0s decided at rest)."""
        cfg = self.config
        return float(math.ceil(max(cfg.stable_window, cfg.panic_window, self.autoscaler.policy.history_s))) + 2.0

    @property
    def desired(self) -> int:
        """The replica count to run: the last decision's (a new deployment: max(min, initialScale))."""
        return self.autoscaler.applied

    def update_config(self, config: AutoscalerConfig, now: float | None = None) -> None:
        """`now` is needed only to leave a rest (the skipped seconds ran under the old config)."""
        if config != self.config:
            if self._rest is not None:
                if now is None:
                    raise ValueError("update_config of a resting core needs `now`")
                self.resume(now)
            self.config = config
            self.autoscaler.update_config(config)

    def record(self, now: float, load: float, requests: float = 0.0, queued: float = 0.0) -> None:
        """The load of the second that ends at `now` (time-averaged in flight + queued). A driver records
        nothing for a second with no replica and no request (Knative's scraper finds no pod and the
        activator holds no request: its windows get no data), so after a spell at zero longer than a
        window the averages start afresh from the request that wakes it, in `tide sim` and live alike."""
        if self._rest is not None:
            self.resume(now)
        if load or requests or queued:
            self._loaded_at = now
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
        if self._rest is not None:
            self.resume(now)
        if not self.due(now):
            return None
        step = self.config.tick_interval
        # The next grid point after `now` (a driver that slept past several keeps the grid's phase).
        self._next_tick += (math.floor((now - self._next_tick) / step + 1e-9) + 1) * step
        decision = self.autoscaler.decide(
            now, ready, reachable=reachable, starting=starting, cold_start_s=cold_start_s, parking=parking
        )
        self.last = decision
        self._decided_at = now
        return decision

    def wake(self, now: float, ready: int = 0, *, parking: Parking | None = None) -> ScaleDecision | None:
        """A request arrived and nothing runs: decide now (None if replicas are already asked for)."""
        if self._rest is not None:
            self.resume(now)
        if self.autoscaler.applied != 0:
            return None
        self._loaded_at = now  # the request the wake records
        decision = self.autoscaler.wake(now, ready, parking=parking)
        self.last = decision
        self._decided_at = now
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
