"""The per-deployment autoscaler the controller and the simulator both drive.

`record` once a second with the deployment's summed in-flight + queued requests, `decide` every
tick (Knative: 2 s) with the ready replica count, `wake` when a request hits a deployment at zero.
The decision is Knative's Scale (kpa.py) followed by the reconciler's bounds and scale-to-zero
state machine (reconcile.py). Pure: `now` is always a parameter.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tide.autoscale.buckets import TimedBuckets, make_buckets
from tide.autoscale.config import AutoscalerConfig
from tide.autoscale.kpa import DeciderSpec, KpaScaler
from tide.autoscale.reconcile import (
    Activity,
    bound_desired,
    next_activity,
    scale_to_zero_step,
)

_ACTIVE, _ACTIVATING, _INACTIVE = Activity.ACTIVE, Activity.ACTIVATING, Activity.INACTIVE  # enum lookups are slow


class ScaleDecision(NamedTuple):
    """One decision. A NamedTuple because one is built per deployment per tick; `reason` is
    formatted only when read."""

    desired: int
    mode: str  # "stable" | "panic"
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


def decider_spec(config: AutoscalerConfig, reachable: bool = True) -> DeciderSpec:
    return DeciderSpec(
        target_value=config.target,
        total_value=float(config.concurrency),
        target_burst_capacity=config.target_burst_capacity,
        panic_threshold=config.panic_threshold,
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        stable_window=config.stable_window,
        scale_down_delay=config.scale_down_delay,
        reachable=reachable,
        activation_scale=config.activation_scale,
        scaling_metric=config.metric,
    )


class Autoscaler:
    """One deployment's autoscaler: metric history, panic and scale-to-zero state."""

    __slots__ = (
        "_activity",
        "_applied",
        "_has_data",
        "_initialized",
        "_kpa",
        "_panic",
        "_panic_window",
        "_rate_anchor_ready",
        "_rate_anchor_time",
        "_reachable",
        "_since",
        "_spec",
        "_stable",
        "_target",
        "config",
        "last",
    )

    def __init__(self, config: AutoscalerConfig) -> None:
        self.config = config
        self._target = config.target  # cached: read every tick
        self._panic_window = config.panic_window
        self._stable: TimedBuckets = make_buckets(config.stable_window, config.aggregation)
        self._panic: TimedBuckets = make_buckets(config.panic_window, config.aggregation)
        self._reachable = True
        self._spec = decider_spec(config)
        self._kpa: KpaScaler | None = None  # built at the first decide, when ready pods are known
        first = max(config.min_replicas, config.initial_scale)
        self._activity = _ACTIVATING if first > 0 else _INACTIVE
        self._since: float | None = None
        self._initialized = False
        self._applied = first  # the replica count last applied (a new deployment starts here)
        self._rate_anchor_time = -math.inf
        self._rate_anchor_ready = 0
        self._has_data = False
        self.last: ScaleDecision | None = None

    @property
    def activity(self) -> Activity:
        return self._activity

    def record(self, now: float, deployment_concurrency: float, requests: float = 0.0) -> None:
        """Add one second's observation. Several records in one second add up (as in Knative,
        where the scraper's and each activator's stats share a bucket)."""
        value = requests if self.config.metric == "rps" else deployment_concurrency
        self._stable.record(now, value)
        self._panic.record(now, value)
        self._has_data = True

    def update_config(self, config: AutoscalerConfig) -> None:
        """Switch to a new spec, keeping the metric history and the panic/scale-to-zero state."""
        old = self.config
        self.config = config
        if config.metric != old.metric:
            self._stable = make_buckets(config.stable_window, config.aggregation)
            self._panic = make_buckets(config.panic_window, config.aggregation)
            self._has_data = False
        else:
            if config.stable_window != old.stable_window or config.aggregation != old.aggregation:
                self._stable = self._stable.resized(config.stable_window, config.aggregation)
            if config.panic_window != old.panic_window or config.aggregation != old.aggregation:
                self._panic = self._panic.resized(config.panic_window, config.aggregation)
        self._target = config.target
        self._panic_window = config.panic_window
        self._spec = decider_spec(config, self._reachable)
        if self._kpa is not None:
            self._kpa.update(self._spec)

    def wake(self, now: float, ready_replicas: int = 0) -> ScaleDecision:
        """A request arrived while at zero: record it (the activator's immediate stat) and decide
        at once, so the first replica starts without waiting for the next tick."""
        self.record(now, 1.0, 1.0)
        decision = self.decide(now, ready_replicas)
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

    def decide(self, now: float, ready_replicas: int, *, reachable: bool = True) -> ScaleDecision:
        """The replica count to run now. `ready_replicas` counts replicas serving (not starting, not
        draining); `reachable=False` (no traffic routed here, e.g. weight 0) lifts min and the
        scale-down limits, as Knative does for unreachable revisions."""
        cfg = self.config
        if reachable is not self._reachable:
            self._reachable = reachable
            self._spec = decider_spec(cfg, reachable)
            if self._kpa is not None:
                self._kpa.update(self._spec)
        kpa = self._kpa
        if kpa is None:
            at_creation = ready_replicas if cfg.panic_enabled else min(ready_replicas, 1)
            kpa = self._kpa = KpaScaler(self._spec, ready_at_creation=at_creation, now=now)
        if self._since is None:
            self._since = now

        # 1. Knative's Scale(); -1 when there is no data yet (the decider's "no decision").
        stable = panic = 0.0
        ebc = raw = 0
        label: str | None = None
        note: str | None = None
        if not self._has_data or self._stable.is_empty(now):
            kpa_desired = -1
        else:
            stable = self._stable.average(now)
            panic = self._panic.average(now)
            rate_base = None
            if cfg.rate_period > 0:
                if now - self._rate_anchor_time >= cfg.rate_period:
                    self._rate_anchor_time = now
                    self._rate_anchor_ready = ready_replicas
                rate_base = self._rate_anchor_ready
            result = kpa.scale(now, ready_replicas, stable, panic, rate_base)
            kpa_desired = result.desired
            ebc = result.excess_burst_capacity
            raw = (
                result.raw_panic
                if kpa.panic_time is not None and result.raw_panic > result.raw_stable
                else result.raw_stable
            )
            label = result.bounded_by

        # 2. The reconciler: bounds, then the scale-to-zero state machine when the result is 0.
        activity = self._activity
        apply = True
        if kpa_desired < 0 and activity is not _ACTIVATING:
            want, apply = kpa_desired, False
        else:
            if cfg.min_replicas <= kpa_desired <= cfg.max_replicas and reachable and self._initialized:
                want = kpa_desired  # the usual tick: within bounds (a fast path of bound_desired)
            else:
                want, bound = bound_desired(
                    kpa_desired, cfg.min_replicas, cfg.max_replicas, cfg.initial_scale, self._initialized, reachable
                )
                if bound is not None:
                    label = bound
            if want == 0:
                want, apply, step_label = self._scale_to_zero(now, activity, reachable)
                if step_label is not None:
                    label = step_label
        if apply:
            self._applied = want
        elif want == 0 and self._applied > 1:
            # Waiting to drop the last replica: the others can go now (only matters with an
            # unbounded scale-down rate; Knative would keep them until the grace period ends).
            self._applied = 1
        desired = self._applied
        if kpa_desired < 0:
            note = f"no metrics yet: holding {desired}"

        if not (activity is _ACTIVE and want > 0 and self._initialized and ready_replicas >= (cfg.min_replicas or 1)):
            # (The condition above is the usual tick, where the PA stays Active.)
            min_ready = self._min_ready()
            if ready_replicas >= min_ready:
                self._initialized = True
            new_activity = next_activity(activity, want, ready_replicas, min_ready)
            if new_activity is not activity:
                self._activity = new_activity
                self._since = now

        in_panic = kpa.panic_time is not None
        decision: ScaleDecision = _new_decision(
            ScaleDecision,
            (
                desired,
                "panic" if in_panic else "stable",
                stable,
                panic,
                raw,
                label if desired != raw or label == "scale-down delay" else None,
                ebc,
                cfg.priority,
                self._activity,
                ready_replicas,
                self._target,
                self._panic_window if in_panic else cfg.stable_window,
                cfg.metric,
                note,
            ),
        )
        self.last = decision
        return decision

    def _scale_to_zero(self, now: float, activity: Activity, reachable: bool) -> tuple[int, bool, str | None]:
        cfg = self.config
        age = now - (self._since if self._since is not None else now)
        inactive = activity is _INACTIVE
        step = scale_to_zero_step(
            activity,
            age,
            cfg.stable_window,
            cfg.scale_to_zero_grace_period,
            cfg.scale_to_zero_retention,
            cfg.activation_timeout,
            reachable,
            cfg.enable_scale_to_zero,
            # The gateway queues at zero like Knative's activator and is put in the path when
            # the deployment goes inactive: no probe, and ProxyFor == InactiveFor.
            False,
            True,
            inactive,
            age if inactive else 0.0,
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
