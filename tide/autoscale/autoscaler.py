"""The per-deployment autoscaler the controller and the simulator both drive: the policy wrapper.

`record` once a second with the deployment's summed in-flight + queued requests, `decide` every
tick (Knative: 2 s) with the ready replica count, `wake` when a request hits a deployment at zero.
The decision is the deployment's policy (policy.py; Knative's KPA for the built-in profiles) followed by
what every policy gets from here: rate limits and activation scale (for policies that do not apply them
themselves), min/max/initial bounds, and Knative's scale-to-zero state machine (reconcile.py). Pure:
`now` is always a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import tide.autoscale.policies  # noqa: F401 - registers the built-in policies
from tide.autoscale.config import AutoscalerConfig
from tide.autoscale.kpa import scale_down_limit, scale_up_limit
from tide.autoscale.policy import NO_DECISION, LoadHistory, Parking, Policy, PolicyContext, make_policy
from tide.autoscale.reconcile import (
    Activity,
    bound_desired,
    next_activity,
    scale_to_zero_step,
)

NO_METRICS_NOTE = "no metrics yet"  # a decision's note when the policy had no load to decide on

_ACTIVE, _ACTIVATING, _INACTIVE = Activity.ACTIVE, Activity.ACTIVATING, Activity.INACTIVE  # enum lookups are slow


class ScaleDecision(NamedTuple):
    """One decision. A NamedTuple because one is built per deployment per tick; `reason` is
    formatted only when read."""

    desired: int
    mode: str  # the mechanism that decided: "stable" | "panic" for Knative's KPA; a policy's own names
    observed_stable: float
    observed_panic: float
    raw_desired: int  # ceil(observed / target) for the mode, before any limit
    bounded_by: str | None  # the last rule that changed the number, None if none did
    excess_burst_capacity: int
    priority: int
    activity: str  # the PA's Active condition after this decision: active | activating | inactive
    ready: int
    target: float  # per-replica target the observation was divided by
    window: float  # seconds the observation in `mode` was averaged over
    metric: str = "concurrency"
    note: str | None = None  # replaces the computed reason (no metrics yet, wake)
    keep_parked: int | None = None  # with parking: parked replicas to keep (the rest stop; None: all)

    @property
    def reason(self) -> str:
        """One human line, e.g. 'panic: concurrency 14.0 over 6 s vs 4 ready x target 0.85 -> 5'."""
        if self.note is not None:
            return self.note
        observed = self.observed_panic if self.mode == "panic" else self.observed_stable
        line = (
            f"{self.mode}: {self.metric} {observed:.1f} over {self.window:g} s vs {self.ready} ready"
            f" x target {self.target:g} -> {self.desired}"
        )
        return f"{line} ({self.bounded_by})" if self.bounded_by else line

    def to_dict(self) -> dict[str, object]:
        fields = self._asdict()
        fields.pop("note")
        fields["reason"] = self.reason
        return fields


_new_decision = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
_new_context = tuple.__new__


class Autoscaler:
    """One deployment's autoscaler: its policy, the load history, the bounds and scale-to-zero state."""

    __slots__ = (
        "_activity",
        "_applied",
        "_initialized",
        "_keep_history",
        "_proxy_since",
        "_rate_anchor_ready",
        "_rate_anchor_time",
        "_since",
        "config",
        "last",
        "load",
        "policy",
        "queued",
    )

    def __init__(self, config: AutoscalerConfig) -> None:
        self.config = config
        self.policy: Policy = make_policy(config)
        history = self.policy.history_s
        self.load = LoadHistory(history)
        self.queued = LoadHistory(history)
        self._keep_history = history > 0  # Knative's KPA keeps its own buckets
        first = max(config.min_replicas, config.initial_scale)
        self._activity = _ACTIVATING if first > 0 else _INACTIVE
        self._since: float | None = None
        self._initialized = False
        self._applied = first  # the replica count last applied (a new deployment starts here)
        self._rate_anchor_time = -math.inf
        self._rate_anchor_ready = 0
        # Since when the gateway has been "in the path" in Knative's sense (SKS proxy mode): the excess
        # burst capacity is negative (too few replicas to absorb `targetBurstCapacity`) or the count is 0.
        # Tide's gateway always is; this only times Knative's fast path to zero (see _scale_to_zero).
        self._proxy_since: float | None = None
        self.last: ScaleDecision | None = None

    @property
    def activity(self) -> Activity:
        return self._activity

    @property
    def applied(self) -> int:
        """The replica count last decided (what the drivers run)."""
        return self._applied

    def resume(self, replicas: int) -> None:
        """Continue from the count a previous controller decided (read back after a restart) instead of
        the initial scale only a new deployment starts at: a deployment at zero stays at zero."""
        self._applied = min(self.config.max_replicas, max(self.config.min_replicas, replicas))
        self._activity = _ACTIVATING if self._applied > 0 else _INACTIVE

    def record(
        self,
        now: float,
        deployment_concurrency: float,
        requests: float = 0.0,
        queued: float = 0.0,
        *,
        arrivals: float | None = None,
    ) -> None:
        """Add one second's observation: in-flight + queued requests time-averaged over the second that
        ends at `now` (`queued`: the part waiting at the gateway), and `requests`, those that arrived in it.
        Several records in one second add up (as in Knative, where the scraper's and each activator's stats
        share a bucket). `arrivals`: what the policy is told arrived, when not `requests` (a wake's own
        stat counts a request the driver's record of the second counts again)."""
        value = requests if self.config.metric == "rps" else deployment_concurrency
        if self._keep_history:
            self.load.record(now, value)
            self.queued.record(now, queued)
        self.policy.observe(now, value, requests if arrivals is None else arrivals)

    def update_config(self, config: AutoscalerConfig) -> None:
        """Switch to a new spec, keeping the load history and the scale-to-zero state (and the policy's
        state when the policy stays the same)."""
        old = self.config
        self.config = config
        if config.policy != old.policy:
            self.policy = make_policy(config)
        else:
            self.policy.update_config(config)
        self._applied = min(config.max_replicas, max(config.min_replicas, self._applied))
        history = self.policy.history_s
        self.load.resize(history)
        self.queued.resize(history)
        self._keep_history = history > 0

    def skip_idle_ticks(self, tick_after: Callable[[float], float | None]) -> None:
        """Ticks at zero (0 ready, no load) were skipped (ScalingCore.rest); `tick_after(t)` is the first of
        them at or after `t` (None: none). Move what they would have moved: the rate periods' anchors."""
        period = self.config.rate_period
        if period > 0 and not self.policy.applies_limits:
            while (at := tick_after(self._rate_anchor_time + period)) is not None:
                self._rate_anchor_time, self._rate_anchor_ready = at, 0
        self.policy.skip_idle_ticks(tick_after)

    def wake(self, now: float, ready_replicas: int = 0, *, parking: Parking | None = None) -> ScaleDecision:
        """A request arrived while at zero: record it (the activator's immediate stat) and decide
        at once, so the first replica starts without waiting for the next tick (`parking`: as in `decide`)."""
        self.record(now, 1.0, 1.0, arrivals=0.0)
        decision = self.decide(now, ready_replicas, parking=parking)
        if decision.desired >= 1:
            return decision
        floor = min(max(1, self.config.activation_scale), self.config.max_replicas)
        self._applied = floor
        self._set_activity(now, next_activity(self._activity, floor, ready_replicas, self._min_ready()))
        forced = decision._replace(
            desired=floor, bounded_by="wake", activity=self._activity, note=f"wake: request at zero -> {floor}"
        )
        self.last = forced
        return forced

    def decide(
        self,
        now: float,
        ready_replicas: int,
        *,
        reachable: bool = True,
        starting: int = 0,
        cold_start_s: float | None = None,
        parking: Parking | None = None,
    ) -> ScaleDecision:
        """The replica count to run now. `ready_replicas` counts replicas serving (not starting, not
        draining), `starting` those asked for but not ready; `reachable=False` (no traffic routed here,
        e.g. weight 0) lifts min and the scale-down limits, as Knative does for unreachable revisions.
        `cold_start_s` is the deployment's measured cold start, for policies that use it; `parking`, when
        its scale-down parks replicas (how many are parked, how long a wake takes)."""
        cfg = self.config
        if self._since is None:
            self._since = now

        # 1. The policy's proposal (NO_DECISION when it has no data yet).
        policy = self.policy
        ctx: PolicyContext = _new_context(
            PolicyContext,
            (
                now,
                ready_replicas,
                starting,
                self._applied,
                cfg.target,
                cfg.concurrency,
                cold_start_s,
                self.load,
                cfg,
                reachable,
                self.queued,
                parking,
            ),
        )
        proposal = policy.propose(ctx)
        proposed = proposal.desired
        label = proposal.bounded_by
        if proposed >= 0 and not policy.applies_limits:
            proposed, limit = self._limit(now, proposed, ready_replicas, reachable)
            if limit is not None:
                label = limit

        # 2. The reconciler: bounds, then the scale-to-zero state machine when the result is 0.
        activity = self._activity
        apply = True
        if proposed < 0 and activity is not _ACTIVATING:
            want, apply = proposed, False
        else:
            if cfg.min_replicas <= proposed <= cfg.max_replicas and reachable and self._initialized:
                want = proposed  # the usual tick: within bounds (a fast path of bound_desired)
            else:
                want, bound = bound_desired(
                    proposed, cfg.min_replicas, cfg.max_replicas, cfg.initial_scale, self._initialized, reachable
                )
                if bound is not None:
                    label = bound
            if want == 0 and not (policy.owns_scale_to_zero and proposed == 0 and cfg.enable_scale_to_zero):
                want, apply, step_label = self._scale_to_zero(now, activity, reachable)
                if step_label is not None:
                    label = step_label
        # kpa.go: the SKS goes to proxy mode when want == 0, the excess burst capacity is negative, or
        # nothing is known and the PA is inactive; the next reconcile reads how long it has been so.
        if want == 0 or proposal.excess_burst_capacity < 0 or (want < 0 and activity is _INACTIVE):
            if self._proxy_since is None:
                self._proxy_since = now
        else:
            self._proxy_since = None
        if apply:
            self._applied = want
        elif want == 0 and self._applied > 1:
            # Waiting to drop the last replica: the others can go now (only matters with an
            # unbounded scale-down rate; Knative would keep them until the grace period ends).
            self._applied = 1
        desired = self._applied
        note = proposal.text
        if proposal.desired == NO_DECISION:
            note = f"{NO_METRICS_NOTE}: holding {desired}"

        if not (activity is _ACTIVE and want > 0 and self._initialized and ready_replicas >= (cfg.min_replicas or 1)):
            # (The condition above is the usual tick, where the PA stays Active.)
            min_ready = self._min_ready()
            if ready_replicas >= min_ready:
                self._initialized = True
            new_activity = next_activity(activity, want, ready_replicas, min_ready)
            if new_activity is not activity:
                self._activity = new_activity
                self._since = now

        raw = proposal.raw
        decision: ScaleDecision = _new_decision(
            ScaleDecision,
            (
                desired,
                proposal.mechanism,
                proposal.observed,
                proposal.observed_panic,
                raw,
                label if desired != raw or label == "scale-down delay" else None,
                proposal.excess_burst_capacity,
                cfg.priority,
                self._activity,
                ready_replicas,
                cfg.target,
                proposal.window,
                cfg.metric,
                note,
                proposal.keep_parked,
            ),
        )
        self.last = decision
        return decision

    def _limit(self, now: float, desired: int, ready: int, reachable: bool) -> tuple[int, str | None]:
        """Rate limits and activation scale for policies that leave them to the wrapper (Knative's order:
        rates relative to the ready count, or to the count at the start of `rate_period`)."""
        cfg = self.config
        base = ready
        if cfg.rate_period > 0:
            if now - self._rate_anchor_time >= cfg.rate_period:
                self._rate_anchor_time = now
                self._rate_anchor_ready = ready
            base = self._rate_anchor_ready
        base_f = float(base) if base > 1 else 1.0
        high = scale_up_limit(cfg.max_scale_up_rate, base_f)
        low = scale_down_limit(cfg.max_scale_down_rate, base_f, reachable)
        label: str | None = None
        if desired > high:
            desired, label = high, "scale-up rate"
        elif desired < low:
            desired, label = low, "scale-down rate"
        if 0 < desired < cfg.activation_scale:
            desired, label = cfg.activation_scale, "activation scale"
        return desired, label

    def _scale_to_zero(self, now: float, activity: Activity, reachable: bool) -> tuple[int, bool, str | None]:
        cfg = self.config
        age = now - (self._since if self._since is not None else now)
        step = scale_to_zero_step(
            activity,
            age,
            cfg.stable_window,
            cfg.scale_to_zero_grace_period,
            cfg.scale_to_zero_retention,
            cfg.activation_timeout,
            reachable,
            cfg.enable_scale_to_zero,
            # The gateway queues at zero like Knative's activator: no probe. ProxyFor runs from when the
            # gateway was put in the path: at the latest when the deployment went inactive, earlier when
            # the excess burst capacity was already negative (Knative's fast path: no grace period).
            False,
            True,
            self._proxy_since is not None,
            now - self._proxy_since if self._proxy_since is not None else 0.0,
        )
        label = step.reason if (step.scale != 0 or not step.apply) else None
        return step.scale, step.apply, label

    def _min_ready(self) -> int:
        cfg = self.config
        if self._initialized:
            return cfg.min_replicas if cfg.min_replicas > 1 else 1
        return max(cfg.min_replicas, cfg.initial_scale)

    def _set_activity(self, now: float, activity: Activity) -> None:
        if activity is not self._activity:
            self._activity = activity
            self._since = now
