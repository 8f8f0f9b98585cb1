"""Tide's own autoscaling policy (`autoscaling.profile: tide`).

Mechanisms, each named in the decision's reason and each switchable for the ablation
(docs/AUTOSCALING.md, "The tide policy"):

* in-service: replicas are sized from the work in service. The load of each second counts only up to
  the capacity that was ready in it, so requests queued behind a cold start count while they are
  queued (the `queue` reason: the count for what is waiting now) but are not averaged into the window
  after they drain. Off: the window holds the whole load, backlog included, as Knative does.
* cold backlog (without parking): after a return that found no replica ready (from zero, or the
  deployment's first load), the window also counts the requests queued behind the cold start, for one
  `scaleDownDelay` from the return: a return that piles up a backlog at zero is demand nothing was ready
  for, and it often grows (Azure Functions' single burst goes from 5 to 48 requests/s a minute after its
  return). A return that a held replica served, and every later window, are sized from the work in
  service. Off: the in-service window only.
* exact concurrency: N requests need ceil(N / concurrency) replicas (no utilization headroom that asks
  for 2 replicas for 1 request at concurrency 1). Off: the profile's target utilization applies.
* burst hold: the highest count of the last `scaleDownDelay` seconds is kept, so a deployment keeps its
  replicas through the short gaps inside a burst.
* spare: at concurrency 1 one idle replica is kept beside the busy ones while requests are in service,
  so the next request does not wait for a whole request or a cold start.
* burst gaps (learned burst hold; without parking): each replica level >= 2 that the work in service
  used is held through the lull after it as long as that level's own past lulls say is worth it
  (tide_levels.py), a missing replica priced at `coldRequestCost` x max(1, concurrency x
  `burstMissScale`). Levels with too few lulls seen fall back to the burst hold. Off: the burst hold only.
* idle spare (off by default; without parking, concurrency 1): during the keep-alive a spare is held
  beside the last replica as long as the gap plan says, a miss priced at `coldRequestCost` x the share
  of past returns that brought a second request within one cold start.
* skip dips: a dip shorter than a decision tick (a second with nothing in flight between requests of a
  busy stretch) is not recorded as an idle gap, so the history's last gaps are lulls a decision could
  see, not hundreds of one-second dips that push the minute-long lulls out of it (a plan made from 200
  dips and one night stops 10 s into a lull whose return comes 20 s later). The keep-alive, pre-warm and
  idle-spare plans read this history; the parked plan keeps every gap. Off: every gap is recorded.
* sparse price: the keep-alive's and pre-warm's price of a cold wait is `coldRequestCost` x the
  deployment's mean time between returns (its last 50 lulls' ends) / `sparseRef` (600 s), between 1 and
  `sparseCap` (4): on a deployment that comes back once an hour each request is a larger share of its
  requests than on a busy one, so a miss there weighs more. Without parking only (a parked replica
  wakes in about a second). Off: `coldRequestCost` everywhere.
* relative price (without parking): a cold wait is priced at `coldRequestWeight` x the replica-seconds the
  deployment needs per request (tide_price.py: its work in service and a cold start per idle gap, per
  request that arrived), not a fixed `coldRequestCost`: a miss on a deployment of a few hundred 20-s image
  jobs a day is one of few requests and is worth holding for, one on a deployment of tens of thousands of
  one-second calls is not. The keep-alive and pre-warm use it, and the learned burst hold prices a missing
  replica at least at it. `coldRequestCost` applies until 20 requests (decayed, half-life a day) are seen,
  and with parking. Off: `coldRequestCost` everywhere.
* return waits (with the relative price): a cold return makes every request of its first cold start wait,
  so the keep-alive's price of a cold return is the price of one wait x the mean requests past lulls'
  returns brought within a cold start. Off: one wait per return.
* periodic: where the deployment's returns fall at a regular phase of the clock (a timer, a cron job, a
  nightly batch; tide_period.py), the keep-alive / pre-warm plan is made from where in the period past
  returns fell instead of from the gap lengths (a timer firing within its minute every 5 min: a 60-s
  window, not the 240-360 s its gaps spread over), a return while the pre-warmed replica still starts
  counted as a whole miss. Off: the gap lengths decide.
* keep-alive / pre-warm (learned): when the deployment goes empty, the last replica follows a plan made
  from the deployment's own idle gaps (tide_gaps.py): stay warm until the gap's likely end, or stop and
  start one replica one cold start before a predictable next arrival. `coldRequestCost` (replica-seconds
  one request that waits a full cold start is worth) sets the trade. Off: the last replica goes when
  the burst hold ends. `fixedKeepAlive` > 0 replaces the plan with a hold of that many seconds (no pre-warm).
* park early (with parking, docs/PARKING.md): when a scale-down parks replicas instead of stopping them,
  a parked replica costs a small fraction of a running one and wakes in about a second, so the policy
  holds replicas only `parkedHold` seconds past the work in service (not the burst hold's
  `scaleDownDelay`, not the learned keep-alive), needs no spare at concurrency 1 while a replica is
  parked, and asks that a request finding no free replica wakes a parked one at once. Off, or without
  parking: the mechanisms above decide.
* parked plan (with parking): each decision says how many parked replicas to keep (`keep_parked`; the
  controller and the simulator stop the rest, least recently parked first): a burst's replicas for
  `parkedBurstRetention` seconds, and while the deployment is empty the last one for a hold planned
  from the deployment's idle gaps with parked time priced at `Parking.cost` (tide_gaps.plan_parked; the
  ski-rental hold while too few gaps were as long). Once that hold ends none are kept, and the learned
  plan may still pre-warm. Off: every parked replica stays for the deployment's retention.
* the cold start is the deployment's measured one (live: its replicas' phase times; sim: the configured
  one), `assumedColdStart` until one is measured.

Pure: the clock is `ctx.now` / `now`; all state lives in the object.
"""

from __future__ import annotations

import math
from collections import deque

from tide.autoscale.config import AutoscalerConfig, OptionRange
from tide.autoscale.policies.tide_gaps import (
    NEVER,
    GapHistory,
    GapPlan,
    default_plan,
    plan_gap,
    plan_parked,
)
from tide.autoscale.policies.tide_levels import LevelHolds
from tide.autoscale.policies.tide_period import Period, describe, find_period, predicted_gaps
from tide.autoscale.policies.tide_price import NeedPerRequest
from tide.autoscale.policy import Parking, Policy, PolicyContext, Proposal, register_policy

NAME = "tide"
MIN_GAPS = 5  # idle gaps seen before the plan trusts them over the ski-rental default
MAX_REPLANS = 64  # re-plans within one gap (at a hold's end or a pre-warm)
MAX_PARKED_REPLANS = 4  # plans of one gap's parked hold (the first, then at each hold's end)
RETURNS_KEPT = 50
STALE_S = 3.0  # a load sample older than this is not the load now
RAMP_SPAN = 4  # seconds over which a rising load's slope is measured
RAMP_CAP = 2.0  # a ramp forecast asks for at most this many times the load now
_EPS = 1e-9

# The user-facing knob and the ablation switches (1 = on), by API name.
OPTIONS = {
    "coldRequestCost": OptionRange(default=300.0, low=0.0, high=86400.0),
    "assumedColdStart": OptionRange(default=30.0, low=0.0, high=3600.0),
    "inService": OptionRange(default=1, low=0, high=1, integer=True),
    "exactConcurrency": OptionRange(default=1, low=0, high=1, integer=True),
    "learnedKeepAlive": OptionRange(default=1, low=0, high=1, integer=True),
    "prewarm": OptionRange(default=1, low=0, high=1, integer=True),
    "spare": OptionRange(default=1, low=0, high=1, integer=True),
    "ramp": OptionRange(default=1, low=0, high=1, integer=True),
    "returnSize": OptionRange(default=0, low=0, high=1, integer=True),
    "parkEarly": OptionRange(default=1, low=0, high=1, integer=True),
    "burstGaps": OptionRange(default=1, low=0, high=1, integer=True),
    "burstMissScale": OptionRange(default=0.25, low=0.0, high=100.0),
    "idleSpare": OptionRange(default=0, low=0, high=1, integer=True),
    "parkedPlan": OptionRange(default=1, low=0, high=1, integer=True),
    "parkedHold": OptionRange(default=0.0, low=0.0, high=3600.0),
    "parkedBurstRetention": OptionRange(default=600.0, low=0.0, high=86400.0),
    "skipDips": OptionRange(default=1, low=0, high=1, integer=True),
    "sparsePrice": OptionRange(default=1, low=0, high=1, integer=True),
    "sparseRef": OptionRange(default=600.0, low=1.0, high=86400.0),
    "sparseCap": OptionRange(default=4.0, low=1.0, high=1000.0),
    "periodic": OptionRange(default=1, low=0, high=1, integer=True),
    "coldBacklog": OptionRange(default=1, low=0, high=1, integer=True),
    "relativePrice": OptionRange(default=1, low=0, high=1, integer=True),
    "coldRequestWeight": OptionRange(default=25.0, low=0.0, high=1e6),
    "returnWaits": OptionRange(default=1, low=0, high=1, integer=True),
    # A keep-alive of this many seconds instead of the learned plan (0: learned): a yardstick for the plan,
    # and for a team that wants the last replica's hold to be predictable.
    "fixedKeepAlive": OptionRange(default=0.0, low=0.0, high=7 * 86400.0),
}
MECHANISMS = (
    "inService",
    "exactConcurrency",
    "learnedKeepAlive",
    "prewarm",
    "spare",
    "ramp",
    "returnSize",
    "burstGaps",
    "idleSpare",
    "skipDips",
    "sparsePrice",
    "periodic",
    "coldBacklog",
    "relativePrice",
    "returnWaits",
    "parkEarly",
    "parkedPlan",
)


class _WindowMax:
    """The largest value of the last `span` seconds (a monotonic deque: O(1) amortised per second)."""

    __slots__ = ("_items", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._items: deque[tuple[int, float]] = deque()

    def add(self, second: int, value: float) -> None:
        items = self._items
        if items and items[-1][0] == second:
            value = max(value, items.pop()[1])
        while items and items[-1][1] <= value:
            items.pop()
        items.append((second, value))

    def peak(self, now: float) -> float:
        items, low = self._items, math.floor(now) - self.span
        while items and items[0][0] <= low:
            items.popleft()
        return items[0][1] if items else 0.0


class TidePolicy(Policy):
    owns_scale_to_zero = True  # the keep-alive plan and the parked hold time the last replica's going

    def __init__(self, config: AutoscalerConfig) -> None:
        super().__init__(config)
        self._read_options(config)
        self._window = _WindowMax(config.scale_down_delay)
        self._cold = _WindowMax(config.scale_down_delay)  # the load of cold returns' first window (`coldBacklog`)
        self._cold_until = -1  # the last second of the current cold return's window
        self._short = _WindowMax(self.parked_hold)  # the hold when parking
        self._retention: float | None = None  # parked replicas' retention, when parking (the last decision's)
        self._gaps = GapHistory()  # every idle gap (the parked plan's)
        self._lulls = GapHistory()  # the idle gaps a decision could see (`skipDips`): the keep-alive plan's
        self._lull_ends: deque[float] = deque(maxlen=RETURNS_KEPT)  # when the last lulls ended
        self._parked_plan: tuple[float, float, int] | None = None  # the last replica's: (empty since, hold, plans)
        self._drop_at: float | None = None  # when the next kept parked replica's hold ends
        self._no_hold = False  # past the parked hold in this gap: the learned plan may only stop or pre-warm
        self._second = -1  # the last second observed
        self._load = 0.0  # its load (in flight + queued)
        self._capacity = 0.0  # requests the ready replicas could hold at the last decision
        self._empty_since: float | None = None
        self._seen_load = False
        self._plan: GapPlan | None = None
        self._replans = 0
        self._returns: deque[float] = deque(maxlen=RETURNS_KEPT)  # peak load just after past gaps
        self._return_until = -1  # the last second of the return being measured
        self._return_peak = 0.0
        self._waits_until = -1  # the last second of the lull's return whose arrivals are being counted
        self._waits_arrived = 0.0  # requests that arrived so far in it
        self._return_sizes: deque[float] = deque(maxlen=RETURNS_KEPT)  # requests within a cold start of past returns
        self._last_cold_start = self.assumed_cold_start
        self._recent: deque[tuple[int, float]] = deque(maxlen=RAMP_SPAN + 1)  # raw load, last seconds
        self._levels = LevelHolds(min_gaps=MIN_GAPS)
        self._idle_spare: tuple[float, float] | None = None  # this gap's (empty since, spare hold)
        self._sparse = 1.0  # this gap's cold-wait price multiplier (`sparsePrice`)
        self._need = NeedPerRequest()  # the replica-seconds this deployment needs per request (`relativePrice`)
        self._need_second = 0.0  # the latest second's work in service, in replicas (added once its second ends)
        self._gap_price = self.miss_cost  # this gap's price of a cold wait before `sparsePrice`
        self._gap_need: float | None = None  # the need per request it was made from (None: `coldRequestCost`)
        self._gap_waits = 1.0  # requests a cold return makes wait, as this gap's price counts them
        self._served = 0.0  # the latest second's load that the ready replicas held (the backlog left out)
        self._period: tuple[float, Period | None] | None = None  # this gap's (empty since, period found)
        self._plan_period: Period | None = None  # the period the current gap plan was made from

    def _read_options(self, config: AutoscalerConfig) -> None:
        self.miss_cost = config.option("coldRequestCost")
        self.cold_weight = config.option("coldRequestWeight")
        self.assumed_cold_start = config.option("assumedColdStart")
        self.on = {name: config.option(name) >= 1 for name in MECHANISMS}
        self.parked_hold = config.option("parkedHold")
        self.burst_retention = config.option("parkedBurstRetention")
        self.burst_miss_scale = config.option("burstMissScale")
        self.sparse_ref = config.option("sparseRef")
        self.sparse_cap = config.option("sparseCap")
        self.fixed_keep_alive = config.option("fixedKeepAlive")

    @property
    def history_s(self) -> float:
        return 0.0  # keeps its own window and gap history

    def update_config(self, config: AutoscalerConfig) -> None:
        super().update_config(config)
        self._read_options(config)
        self._window.span = config.scale_down_delay
        self._cold.span = config.scale_down_delay
        self._short.span = self.parked_hold

    # -- observations --------------------------------------------------------------------------
    def observe(self, now: float, value: float, arrivals: float = 0.0) -> None:
        second = math.floor(now)
        finished = 0.0  # the previous second's work, now that it is whole
        if second == self._second:
            value += self._load  # several records in one second add up
        else:
            finished, self._need_second = self._need_second, 0.0
        self._need.add(now, need=finished, requests=arrivals)  # one decay for both
        self._second, self._load = second, value
        if self._recent and self._recent[-1][0] == second:
            self._recent.pop()
        self._recent.append((second, value))
        if value > _EPS:
            if self._empty_since is not None and self._seen_load:
                gap = now - self._empty_since
                self._gaps.add(gap)
                # A clairvoyant scaler holds a replica through the gap or starts one just in time.
                self._need.add(now, need=min(gap, self._last_cold_start))
                if not (self.on["skipDips"] and gap < self.config.tick_interval - _EPS):
                    self._lulls.add(gap)
                    self._lull_ends.append(now)
                    if self._waits_until < 0:  # count what arrives within a cold start of this lull's end
                        self._waits_until = second + max(1, math.ceil(self._last_cold_start)) - 1
                        self._waits_arrived = 0.0
            if (self._empty_since is not None or not self._seen_load) and self._capacity <= _EPS:
                # A return that found nothing ready: its backlog behind the cold start is counted for a window.
                self._cold_until = second + math.ceil(self._cold.span) - 1
            if self._empty_since is not None:
                # Measure what comes back within one cold start: the requests a cold deployment makes wait.
                span = max(1, math.ceil(self._last_cold_start))
                self._return_until, self._return_peak = second + span - 1, 0.0
            self._empty_since = None
            self._plan = None
            self._no_hold = False
            self._seen_load = True
        elif self._empty_since is None:
            self._empty_since = float(second)
        if self._return_until >= 0:
            if second <= self._return_until:
                self._return_peak = max(self._return_peak, value)
            if second >= self._return_until:
                self._returns.append(self._return_peak)
                self._return_until = -1
        if self._waits_until >= 0:
            # The requests a cold return makes wait: all that arrive within its first cold start, dips and all.
            if second <= self._waits_until:
                self._waits_arrived += arrivals
            if second >= self._waits_until:
                if self._waits_arrived > 0.0:  # a driver that counts arrivals
                    self._return_sizes.append(self._waits_arrived)
                self._waits_until = -1
        counted = min(value, self._capacity) if self.on["inService"] else value
        self._served = counted
        self._need_second = counted / max(1, self.config.concurrency)
        if second <= self._cold_until:
            self._cold.add(second, value)
        self._window.add(second, counted)
        self._short.add(second, counted)

    def wakes_for_queue(self) -> bool:
        return self.on["parkEarly"]

    def next_decision_at(self, now: float) -> float | None:
        """When, while at zero with nothing to serve, this policy wants to decide again (a pre-warm, or the
        end of a parked replica's hold)."""
        if self._empty_since is None:
            return None
        times = [self._drop_at] if self._drop_at is not None else []
        plan = self._plan
        if plan is None:
            # Parked: the learned plan takes over once the parked replicas' retention runs out.
            at = self._plan_after_parking_at()
            if at is not None:
                times.append(at)
        elif plan.prewarm != NEVER:
            times.append(self._empty_since + plan.prewarm)
        later = [t for t in times if t >= now]
        return min(later) if later else None

    def _plan_after_parking_at(self) -> float | None:
        retention = self._retention
        if retention is None or self._empty_since is None or not self.on["learnedKeepAlive"]:
            return None
        return self._empty_since + retention - self.config.tick_interval

    # -- decisions -----------------------------------------------------------------------------
    def propose(self, ctx: PolicyContext) -> Proposal:
        proposal = self._propose(ctx)
        parking = ctx.parking
        if parking is None or not (self.on["parkEarly"] and self.on["parkedPlan"]):
            self._drop_at = None
            return proposal
        keep = self._keep_parked(ctx, parking, max(0, proposal.desired))
        text = proposal.text
        if text is not None and (parking.parked or keep):
            text += f"; keeping {keep} of the parked"
        return proposal._replace(keep_parked=keep, text=text)

    def _propose(self, ctx: PolicyContext) -> Proposal:
        conc = ctx.concurrency
        self._capacity = ctx.ready * conc
        per_replica = float(conc) if self.on["exactConcurrency"] else ctx.target
        # The latest second's load (live samples arrive about once a second, decisions every tick).
        now_load = self._load if ctx.now - self._second <= STALE_S else 0.0
        ahead = now_load
        if self.on["ramp"] and now_load > (ctx.ready + ctx.starting) * per_replica + _EPS:
            ahead = self._ramp(now_load, ctx.now, self._cold_start(ctx))  # short and rising: look ahead
        for_queue = math.ceil(ahead / per_replica - _EPS)
        parking = ctx.parking if self.on["parkEarly"] else None
        self._retention = parking.retention_s if parking is not None else None
        window = self._window if parking is None else self._short
        peak = window.peak(ctx.now)
        for_window = math.ceil(peak / per_replica - _EPS)
        # Without parking: the load of a cold return's first window, its backlog behind the cold start included.
        cold_peak = self._cold.peak(ctx.now) if parking is None and self.on["coldBacklog"] else 0.0
        for_cold = math.ceil(cold_peak / per_replica - _EPS)
        busy = max(for_queue, for_window, for_cold)
        span = window.span
        # A spare spares a wait of a request or a cold start; a parked replica wakes for it in about a second.
        spare = 1 if self.on["spare"] and conc == 1 and (parking is None or parking.parked == 0) else 0
        spare = spare if now_load > _EPS else 0
        served = min(now_load, self._served) if self.on["inService"] else now_load  # not the backlog
        held = self._level_hold(ctx, math.ceil(served / per_replica - _EPS), parking is None)
        if now_load > _EPS:
            held_for = max(for_window, for_cold)
            if for_queue >= held_for and ahead > now_load + _EPS:
                text = (
                    f"ramp: {now_load:.1f} requests in service or waiting and rising; "
                    f"{ahead:.1f} expected within a cold start at {per_replica:g}/replica"
                )
                mechanism = "ramp"
            elif for_queue >= held_for:
                text = f"queue: {now_load:.1f} requests in service or waiting at {per_replica:g}/replica"
                mechanism = "queue"
            elif for_window >= for_cold:
                text = (
                    f"burst hold: up to {peak:.1f} requests {self._window_noun()} in the last {span:g}s "
                    f"at {per_replica:g}/replica"
                )
                mechanism = "burst-hold"
            else:
                text = self._cold_text(cold_peak, per_replica)
                mechanism = "cold-backlog"
            if spare:
                text += " + 1 spare (concurrency 1)"
            desired = busy + spare
            if held > desired:
                text = (
                    f"burst gaps: {now_load:.1f} requests in service or waiting; holding {held} replicas "
                    f"while this deployment's lulls below that level usually end (learned)"
                )
                mechanism, desired = "burst-gaps", held
            if parking is not None and ctx.starting and desired < ctx.ready + ctx.starting:
                desired = ctx.ready + ctx.starting
                text += self._keep_starts(ctx)
            return Proposal(
                desired, mechanism, observed=now_load, window=span, raw=desired, text=f"{text} -> {desired}"
            )
        if parking is not None:
            if (
                self.on["parkedPlan"]
                and self.on["learnedKeepAlive"]
                and for_window == 0
                and not ctx.starting
                and self._parked_until(ctx, parking) <= ctx.now + _EPS
            ):
                # Past the last replica's parked hold: from here the learned plan may stop or pre-warm.
                self._no_hold = True
                return self._idle(ctx)
            plan_at = self._plan_after_parking_at()
            if for_window == 0 and plan_at is not None and ctx.now >= plan_at - _EPS:
                # The parked replicas are (about to be) stopped: from here the learned plan decides
                # whether to hold one warm (a wake, not a cold start, while one is still parked) or pre-warm.
                return self._idle(ctx)
            # Empty, and a scale-down parks: hold only `parkedHold`; a wake costs about a second, not a cold start.
            desired = for_window
            text = (
                f"park: up to {peak:.1f} requests {self._window_noun()} in the last {span:g}s; idle replicas "
                f"park and wake in {parking.wake_s:g}s"
            )
            if ctx.starting and desired < ctx.ready + ctx.starting:
                desired = ctx.ready + ctx.starting
                text += self._keep_starts(ctx)
            return Proposal(desired, "park", observed=peak, window=span, raw=desired, text=f"{text} -> {desired}")
        # Empty: more than one replica only while the burst hold lasts; the last one follows the plan.
        if for_cold >= 2 and for_cold > max(held, for_window):
            text = f"{self._cold_text(cold_peak, per_replica)} -> {for_cold}"
            return Proposal(for_cold, "cold-backlog", observed=cold_peak, window=span, raw=for_cold, text=text)
        if held >= 2 and held > for_window:
            text = (
                f"burst gaps: idle; holding {held} replicas while this deployment's lulls at that level "
                f"usually end (learned) -> {held}"
            )
            return Proposal(held, "burst-gaps", observed=peak, window=span, raw=held, text=text)
        if for_window >= 2 or not self.on["learnedKeepAlive"]:
            text = f"burst hold: up to {peak:.1f} requests {self._window_noun()} in the last {span:g}s -> {for_window}"
            return Proposal(for_window, "burst-hold", observed=peak, window=span, raw=for_window, text=text)
        return self._idle(ctx)

    def _cold_text(self, cold_peak: float, per_replica: float) -> str:
        return (
            f"cold backlog: up to {cold_peak:.1f} requests in service or queued since a return found no replica "
            f"ready, counted for {self._cold.span:g}s at {per_replica:g}/replica"
        )

    def _level_hold(self, ctx: PolicyContext, need: int, running: bool) -> int:
        """Records the replicas the work needs now and returns the highest level worth holding through the
        lull that follows a burst (0: none). Only without parking: a parked replica wakes in about a second."""
        self._levels.update(ctx.now, need)
        if not (running and self.on["burstGaps"]):
            return 0
        # A replica missing at the level makes up to `concurrency` requests wait: count that many x the scale
        # (at least one) as full cold waits.
        miss = self.miss_cost * max(1.0, ctx.concurrency * self.burst_miss_scale)
        per_request = self._need_per_request()
        if per_request is not None:  # at least one request's relative price (`relativePrice`)
            miss = max(miss, self.cold_weight * per_request)
        return self._levels.held(ctx.now, self._cold_start(ctx), miss)

    def _keep_parked(self, ctx: PolicyContext, parking: Parking, desired: int) -> int:
        """Parked replicas worth keeping: those parked less than `parkedBurstRetention` ago (a burst's
        replicas, for the next burst), and while the deployment is empty the last one as long as the learned
        parked hold lasts. Also sets when the next of them is due to go (`_drop_at`)."""
        now, burst = ctx.now, self.burst_retention
        times = [since + burst for since in parking.since if now < since + burst - _EPS]
        leaving = max(0, ctx.ready + ctx.starting - desired)  # park with this decision: just parked
        keep = len(times) + leaving
        if leaving and burst > 0:
            times.append(now + burst)
        if desired == 0 and parking.parked + leaving > 0:
            until = self._parked_until(ctx, parking)
            if until <= now + _EPS:
                # Empty, and this gap is not worth a parked replica: a burst's are not either (any one of
                # them would serve the next request first).
                self._drop_at = None
                return 0
            keep = max(keep, 1)  # the last replica: any one parked serves the gap's end
            times.append(until)
        self._drop_at = min(times) if times else None
        return keep

    def _parked_until(self, ctx: PolicyContext, parking: Parking) -> float:
        """Until when the last replica is worth keeping parked through this idle gap. Planned from the
        deployment's own idle gaps longer than the time already idle (parked time priced at `parking.cost`,
        a request that finds nothing at a cold start plus `coldRequestCost`), and planned again when that
        hold runs out; where fewer than MIN_GAPS past gaps were that long, the ski-rental rule: parked until
        the gap's parked time has cost as much as one such miss."""
        since = self._empty_since
        if since is None:
            return NEVER
        cached = self._parked_plan
        replans = 0
        if cached is not None and cached[0] == since:
            hold, replans = cached[1], cached[2]
            if ctx.now < since + hold - _EPS or replans >= MAX_PARKED_REPLANS:
                return since + hold
        elapsed = max(0.0, ctx.now - since)
        stop_cost = self._cold_start(ctx) + self._miss_cost_per_replica(ctx.concurrency, self.miss_cost)
        longer = self._gaps.longer_than(elapsed)
        if parking.cost <= 0:
            hold = NEVER
        elif len(longer) < MIN_GAPS:
            hold = max(elapsed, stop_cost / parking.cost)
        else:
            hold = plan_parked(longer, elapsed, stop_cost, parking.cost)
        self._parked_plan = (since, hold, replans + 1)
        return since + hold

    @staticmethod
    def _keep_starts(ctx: PolicyContext) -> str:
        # With parking a replica that finishes its start parks and then wakes in about a second: a start in
        # progress is kept (cancelling it would throw its cold start away); ready replicas may still park.
        return f"; keeping {ctx.starting} start(s) in progress (they park when ready)"

    def _ramp(self, now_load: float, now: float, cold_start: float) -> float:
        """The load a cold start from now if it keeps rising as over the last RAMP_SPAN seconds."""
        recent = self._recent
        if len(recent) < 2 or now_load <= _EPS:
            return now_load
        first_second, first = recent[0]
        span = recent[-1][0] - first_second
        if span <= 0 or recent[-1][0] < math.floor(now) - 1:
            return now_load
        slope = (now_load - first) / span
        if slope <= 0:
            return now_load
        return min(now_load + slope * cold_start, RAMP_CAP * now_load)

    def _typical_return(self) -> float:
        """Requests that typically come back at once after a gap (the median peak of past returns; >= 1)."""
        if not self.on["returnSize"] or len(self._returns) < MIN_GAPS:
            return 1.0
        return max(1.0, sorted(self._returns)[len(self._returns) // 2])

    def _held_count(self, concurrency: int) -> int:
        """Replicas for what typically comes back after a gap."""
        return max(1, math.ceil(self._typical_return() / concurrency - _EPS))

    def _second_share(self) -> float:
        """The share of past returns after a gap that brought a second request within one cold start."""
        returns = self._returns
        return sum(1 for peak in returns if peak >= 2.0 - _EPS) / len(returns) if returns else 0.0

    def _idle_spare_hold(self, since: float, elapsed: float, cold_start: float, concurrency: int) -> float:
        """At concurrency 1, how far into this gap a spare is worth keeping beside the held replica: a return
        that brings a second request within a cold start makes it wait one, as often as past returns did."""
        if not (self.on["idleSpare"] and self.on["spare"]) or concurrency != 1 or len(self._returns) < MIN_GAPS:
            return 0.0
        cached = self._idle_spare
        if cached is not None and cached[0] == since:
            return cached[1]
        miss = self._gap_price * self._second_share()
        longer = self._lulls.longer_than(elapsed)
        hold = 0.0
        if len(longer) >= MIN_GAPS and miss > 0:
            hold = plan_gap(longer, elapsed, cold_start, miss, allow_prewarm=False).hold
        self._idle_spare = (since, hold)
        return hold

    def _price_text(self) -> str:
        """The price of a cold wait in this gap's plan, in words."""
        price = self._gap_price
        factors = []
        if self._gap_need is not None:
            factors.append(
                f"{self.cold_weight:g} x the {self._gap_need:.3g} replica-s this deployment needs per request"
            )
            if self._gap_waits > 1.0 + _EPS:
                factors.append(f"{self._gap_waits:.1f} requests a cold return makes wait")
        elif self._sparse > 1.0 + _EPS:
            factors.append(f"{price:g}")
        if self._sparse > 1.0 + _EPS:
            factors.append(f"{self._sparse:.1f}, sparse, one return every {self._return_interval() / 60:.0f} min")
        text = f"{price * self._sparse:.4g} replica-s"
        return f"{text}: {' x '.join(factors)}" if factors else text

    def _need_per_request(self) -> float | None:
        """The replica-seconds this deployment needs per request (`relativePrice`, tide_price.py); None when
        off or not yet measured (then `coldRequestCost` prices a cold wait)."""
        if not self.on["relativePrice"]:
            return None
        return self._need.per_request()

    def _price_gap(self, ctx: PolicyContext) -> None:
        """Fix this gap's price of a cold wait: relative to the need per request without parking (a parked
        replica wakes in about a second), else `coldRequestCost`; x the sparse scale."""
        need = self._need_per_request() if ctx.parking is None else None
        self._gap_need = need
        self._gap_price = self.miss_cost if need is None else self.cold_weight * need
        self._gap_waits = 1.0
        if need is not None and self.on["returnWaits"] and len(self._return_sizes) >= MIN_GAPS:
            # A cold return makes every request of its first cold start wait, not one.
            self._gap_waits = max(1.0, sum(self._return_sizes) / len(self._return_sizes))
            self._gap_price *= self._gap_waits
        self._sparse = self._sparse_scale() if ctx.parking is None else 1.0

    def _return_interval(self) -> float:
        ends = self._lull_ends
        return (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else 0.0

    def _sparse_scale(self) -> float:
        """How much more a cold wait weighs on this deployment than on one that returns every `sparseRef`
        seconds: each of its requests is a larger share of its requests (at most `sparseCap`)."""
        ends = self._lull_ends
        if not self.on["sparsePrice"] or len(ends) < MIN_GAPS:
            return 1.0
        interval = self._return_interval()
        return min(self.sparse_cap, max(1.0, interval / self.sparse_ref))

    def _miss_cost_per_replica(self, concurrency: int, price: float) -> float:
        """Every request of a return that finds nothing warm waits: per held replica, the cold waits it spares
        (`price` replica-s each)."""
        return price * self._typical_return() / self._held_count(concurrency)

    def _window_noun(self) -> str:
        return "in service" if self.on["inService"] else "in service or waiting"

    def _cold_start(self, ctx: PolicyContext) -> float:
        measured = ctx.cold_start_s if ctx.cold_start_s is not None else self.assumed_cold_start
        self._last_cold_start = measured
        return measured

    def _make_plan(
        self, elapsed: float, cold_start: float, concurrency: int, *, after_prewarm: bool = False
    ) -> GapPlan:
        self._replans += 1
        self._plan_period = None
        allow_hold = after_prewarm or not self._no_hold  # past a parked hold, holding warm is not worth it
        if self.fixed_keep_alive > 0:  # no pre-warm either: a fixed hold, then wait for a request
            return GapPlan(max(elapsed, self.fixed_keep_alive if allow_hold else 0.0), NEVER, 0.0, 0)
        if len(self._lulls) < MIN_GAPS:
            if self._replans > 1 or not allow_hold:  # the default hold has run out: nothing says hold longer
                return GapPlan(elapsed, NEVER, cold_start + self._gap_price, 0)
            return default_plan(elapsed, cold_start, self._gap_price)
        gaps = self._lulls.longer_than(elapsed)
        period = self._period_of_gap()
        if period is not None and self._empty_since is not None:
            predicted = predicted_gaps(period, self._lull_ends, self._empty_since)
            predicted = predicted[predicted > elapsed + _EPS]
            if len(predicted) >= MIN_GAPS:  # else past the predicted returns: the gap lengths decide
                gaps, self._plan_period = predicted, period
        return plan_gap(
            gaps,
            elapsed,
            cold_start,
            self._miss_cost_per_replica(concurrency, self._gap_price) * self._sparse,
            allow_hold=allow_hold,
            allow_prewarm=self.on["prewarm"] and not after_prewarm,
            pro_rata=self._plan_period is None,
        )

    def _period_of_gap(self) -> Period | None:
        """The regular period of this deployment's returns (`periodic`), found once per idle gap."""
        since = self._empty_since
        if not self.on["periodic"] or since is None:
            return None
        cached = self._period
        if cached is None or cached[0] != since:
            cached = self._period = (since, find_period(self._lull_ends))
        return cached[1]

    def _idle(self, ctx: PolicyContext) -> Proposal:
        since = self._empty_since if self._empty_since is not None else ctx.now
        elapsed = max(0.0, ctx.now - since)
        cold_start = self._cold_start(ctx)
        plan = self._plan
        if plan is None:
            self._replans = 0
            self._price_gap(ctx)
            plan = self._plan = self._make_plan(elapsed, cold_start, ctx.concurrency)
        elif (
            elapsed >= plan.hold
            and plan.prewarm == NEVER
            and self._replans < MAX_REPLANS
            and elapsed > 0
            and not self._no_hold
        ):
            plan = self._plan = self._make_plan(elapsed, cold_start, ctx.concurrency)
        period = self._plan_period  # the plan (or the pre-warm it led to) follows the clock's period
        if elapsed >= plan.prewarm:
            if ctx.ready + ctx.starting == 0 and self._replans < MAX_REPLANS:
                # Time to pre-warm: then hold it as long as the gaps that lasted this long suggest.
                warm = self._make_plan(elapsed, cold_start, ctx.concurrency, after_prewarm=True)
                self._plan = GapPlan(max(warm.hold, elapsed + cold_start), NEVER, warm.expected_cost, warm.samples)
            if period is not None:
                return Proposal(
                    1,
                    "periodic",
                    observed=elapsed,
                    raw=1,
                    text=(
                        f"periodic: idle {elapsed:.0f}s; pre-warming one cold start ({cold_start:.0f}s) before "
                        f"the next return is due ({describe(period)}) -> 1"
                    ),
                )
            return Proposal(
                1,
                "pre-warm",
                observed=elapsed,
                raw=1,
                text=(
                    f"pre-warm: idle {elapsed:.0f}s; the next request is likely within a cold start "
                    f"({cold_start:.0f}s; {plan.samples} past gaps) -> 1"
                ),
            )
        source = self._plan_source(plan)
        if elapsed < plan.hold:
            held = self._held_count(ctx.concurrency)
            spare_until = 0.0  # with parking a parked replica wakes for a second request in about a second
            if ctx.parking is None:
                spare_until = self._idle_spare_hold(since, elapsed, cold_start, ctx.concurrency)
            if elapsed < spare_until:
                held += 1
                return Proposal(
                    held,
                    "idle-spare",
                    observed=elapsed,
                    raw=held,
                    text=(
                        f"idle spare: idle {elapsed:.0f}s; staying warm until {plan.hold:.0f}s into the gap, "
                        f"with a spare until {spare_until:.0f}s ({self._second_share():.0%} of past returns "
                        f"brought a second request within a cold start; concurrency 1) -> {held}"
                    ),
                )
            if period is not None:
                return Proposal(
                    held,
                    "periodic",
                    observed=elapsed,
                    raw=held,
                    text=(
                        f"periodic: idle {elapsed:.0f}s; staying warm until {plan.hold:.0f}s into the gap, "
                        f"while the next return is due ({describe(period)}) -> {held}"
                    ),
                )
            return Proposal(
                held,
                "keep-alive",
                observed=elapsed,
                raw=held,
                text=f"keep-alive: idle {elapsed:.0f}s; staying warm until {plan.hold:.0f}s into the gap ({source}) -> {held}",
            )
        after = f"; pre-warm at {plan.prewarm:.0f}s into the gap" if plan.prewarm != NEVER else ""
        if period is not None:
            return Proposal(
                0,
                "periodic",
                observed=elapsed,
                raw=0,
                text=f"periodic: idle {elapsed:.0f}s; stopping until the next return is due ({describe(period)}){after} -> 0",
            )
        return Proposal(
            0,
            "stop",
            observed=elapsed,
            raw=0,
            text=f"stop: idle {elapsed:.0f}s, past the likely end of this gap ({source}){after} -> 0",
        )

    def _plan_source(self, plan: GapPlan) -> str:
        """What the keep-alive plan was made from, for its reason."""
        if self.fixed_keep_alive > 0:
            return f"a fixed keep-alive of {self.fixed_keep_alive:g}s, not learned: fixedKeepAlive"
        source = f"{plan.samples} past idle gaps" if plan.samples else f"too few idle gaps yet (< {MIN_GAPS})"
        if self.on["skipDips"]:
            source += f"; dips under {self.config.tick_interval:g}s skipped"
        return f"{source}; a cold wait is worth {self._price_text()}"


register_policy(
    NAME,
    TidePolicy,
    # The policy decides when the last replica goes: the wrapper's scale-to-zero adds no delay of its own.
    profile_defaults={
        "window": 6,
        "scaleDownDelay": 60,
        "scaleToZeroGracePeriod": 0,
        "scaleToZeroRetention": 0,
        "maxScaleDownRate": 1000,
        "maxScaleUpRate": 1000,
    },
    options=OPTIONS,
)
