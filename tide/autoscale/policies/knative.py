"""Knative's KPA as a policy: Scale() (kpa.py) over Knative's own 1 s buckets.

The `knative`, `coreweave`, `baseten` and `development` profiles are configurations of it. It applies the
rate limits and activation scale itself, in the order Knative does (before panic mode and the scale-down
delay), which the conformance cases pin; the wrapper adds bounds and scale to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tide.autoscale.buckets import TimedBuckets, make_buckets
from tide.autoscale.config import AutoscalerConfig
from tide.autoscale.kpa import DeciderSpec, KpaScaler
from tide.autoscale.policy import NO_DECISION, Policy, PolicyContext, Proposal, register_policy

_new_proposal = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


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


class KnativePolicy(Policy):
    """Knative's decider: stable/panic windows, panic mode, scale-down delay, burst capacity."""

    applies_limits = True
    rests_at_zero = True  # zero load at zero: averages 0, no panic, the delay window holds 0s

    def __init__(self, config: AutoscalerConfig) -> None:
        super().__init__(config)
        self._stable: TimedBuckets = make_buckets(config.stable_window, config.aggregation)
        self._panic: TimedBuckets = make_buckets(config.panic_window, config.aggregation)
        self._has_data = False
        self._reachable = True
        self._spec = decider_spec(config)
        self._kpa: KpaScaler | None = None  # built at the first decision, when ready pods are known
        self._rate_anchor_time = -math.inf
        self._rate_anchor_ready = 0

    @property
    def history_s(self) -> float:
        return 0.0  # reads its own buckets, not the shared LoadHistory

    @property
    def in_panic(self) -> bool:
        return self._kpa is not None and self._kpa.panic_time is not None

    def observe(self, now: float, value: float, arrivals: float = 0.0) -> None:
        self._stable.record(now, value)
        self._panic.record(now, value)
        self._has_data = True

    def skip_idle_ticks(self, tick_after: Callable[[float], float | None]) -> None:
        period = self.config.rate_period
        if period > 0:  # each rate period started at the first tick a period after the last: 0 ready then
            while (at := tick_after(self._rate_anchor_time + period)) is not None:
                self._rate_anchor_time, self._rate_anchor_ready = at, 0

    def update_config(self, config: AutoscalerConfig) -> None:
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
        self._spec = decider_spec(config, self._reachable)
        if self._kpa is not None:
            self._kpa.update(self._spec)

    def propose(self, ctx: PolicyContext) -> Proposal:
        cfg = self.config
        now, ready = ctx.now, ctx.ready
        if ctx.reachable is not self._reachable:
            self._reachable = ctx.reachable
            self._spec = decider_spec(cfg, ctx.reachable)
            if self._kpa is not None:
                self._kpa.update(self._spec)
        kpa = self._kpa
        if kpa is None:
            at_creation = ready if cfg.panic_enabled else min(ready, 1)
            kpa = self._kpa = KpaScaler(self._spec, ready_at_creation=at_creation, now=now)
        if not self._has_data or self._stable.is_empty(now):
            # The decider's "no decision" (Knative's ErrNoData).
            return _new_proposal(Proposal, (NO_DECISION, "stable", 0.0, cfg.stable_window, 0, None, 0, 0.0, None, None))
        stable = self._stable.average(now)
        panic = self._panic.average(now)
        rate_base = None
        if cfg.rate_period > 0:
            if now - self._rate_anchor_time >= cfg.rate_period:
                self._rate_anchor_time = now
                self._rate_anchor_ready = ready
            rate_base = self._rate_anchor_ready
        result = kpa.scale(now, ready, stable, panic, rate_base)
        in_panic = kpa.panic_time is not None
        raw = result.raw_panic if in_panic and result.raw_panic > result.raw_stable else result.raw_stable
        return _new_proposal(
            Proposal,
            (
                result.desired,
                "panic" if in_panic else "stable",
                stable,
                cfg.panic_window if in_panic else cfg.stable_window,
                raw,
                result.bounded_by,
                result.excess_burst_capacity,
                panic,
                None,
                None,
            ),
        )


register_policy("kpa", KnativePolicy)
