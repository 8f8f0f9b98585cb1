"""Knative's `autoscaler.Scale`: one decision from observed totals and ready pods.

Mirrors `pkg/autoscaler/scaling/autoscaler.go` (see ALGORITHM.md section 4). The caller supplies the
observed stable/panic values, so the conformance cases can drive it directly and the `Autoscaler`
feeds it from its own buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from tide.autoscale.maxwindow import TimedMaxWindow

DELAY_GRANULARITY_S = 2  # Knative's tickInterval: the scale-down-delay buckets are 2 s wide
_UNBOUNDED = 2**31 - 1


@dataclass(frozen=True, slots=True)
class DeciderSpec:
    """The DeciderSpec fields Scale reads. `panic_threshold` is a ratio (2.0 == 200 %)."""

    target_value: float
    total_value: float
    target_burst_capacity: float
    panic_threshold: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    stable_window: float
    scale_down_delay: float = 0.0
    reachable: bool = True
    activation_scale: int = 0
    scaling_metric: str = "concurrency"


class ScaleResult(NamedTuple):
    """Scale()'s result (a NamedTuple: built every tick for every deployment, so kept cheap)."""

    desired: int
    excess_burst_capacity: int
    valid: bool
    # Diagnostics for the decision's reason line.
    stable_pods: int = 0
    panic_pods: int = 0
    raw_stable: int = 0
    raw_panic: int = 0
    bounded_by: str | None = None


INVALID = ScaleResult(0, 0, False)
_new_result = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def scale_up_limit(rate: float, ready: float) -> int:
    return _UNBOUNDED if math.isinf(rate) else math.ceil(rate * ready)


def scale_down_limit(rate: float, ready: float, reachable: bool) -> int:
    return math.floor(ready / rate) if reachable else 0


def excess_burst_capacity(tbc: float, ready_count: int, total: float, observed_panic: float) -> int:
    if tbc == 0:
        return 0
    if tbc < 0:
        return -1
    return math.floor(ready_count * total - tbc - observed_panic)


class KpaScaler:
    """Per-deployment Scale state: panic time, max panic pods, scale-down-delay window."""

    __slots__ = ("_delay", "max_panic_pods", "panic_time", "spec")

    def __init__(self, spec: DeciderSpec, *, ready_at_creation: int, now: float) -> None:
        self.spec = spec
        # More than one pod already ready: start in panic so a restart that lost the metric
        # history cannot scale a busy deployment down.
        self.panic_time: float | None = now if ready_at_creation > 1 else None
        self.max_panic_pods = ready_at_creation
        self._delay: TimedMaxWindow | None = None
        self._make_delay_window()

    def _make_delay_window(self) -> None:
        delay = self.spec.scale_down_delay
        self._delay = TimedMaxWindow(delay, DELAY_GRANULARITY_S) if delay > 0 else None

    def update(self, spec: DeciderSpec) -> None:
        old_delay = self.spec.scale_down_delay
        self.spec = spec
        if spec.scale_down_delay != old_delay:
            self._make_delay_window()

    @property
    def in_panic(self) -> bool:
        return self.panic_time is not None

    def scale(
        self,
        now: float,
        ready_count: int,
        observed_stable: float,
        observed_panic: float,
        rate_base: int | None = None,
    ) -> ScaleResult:
        """One Scale() call. `rate_base` (default: ready) is the pod count the rate limits are
        relative to; profiles with a longer evaluation period pass the count at its start."""
        spec = self.spec
        ready = float(ready_count) if ready_count > 1 else 1.0
        base = ready if rate_base is None else float(rate_base) if rate_base > 1 else 1.0
        up_rate = spec.max_scale_up_rate
        max_up = math.ceil(up_rate * base) if up_rate != math.inf else _UNBOUNDED
        max_down = math.floor(base / spec.max_scale_down_rate) if spec.reachable else 0

        target = spec.target_value
        dspc = math.ceil(observed_stable / target)
        dppc = math.ceil(observed_panic / target)
        desired_stable, bound_stable = _clamp(dspc, max_down, max_up)
        desired_panic, bound_panic = _clamp(dppc, max_down, max_up)

        activation = spec.activation_scale
        if activation > 1:
            if dspc > 0 and activation > desired_stable:
                desired_stable, bound_stable = activation, "activation scale"
            if dppc > 0 and activation > desired_panic:
                desired_panic, bound_panic = activation, "activation scale"

        over_threshold = dppc / ready >= spec.panic_threshold
        if over_threshold:
            self.panic_time = now
        elif self.panic_time is not None and self.panic_time + spec.stable_window < now:
            self.panic_time = None
            self.max_panic_pods = 0

        if self.panic_time is not None:
            if desired_panic >= desired_stable:
                desired, bounded_by = desired_panic, bound_panic
            else:
                desired, bounded_by = desired_stable, bound_stable
            if desired > self.max_panic_pods:
                self.max_panic_pods = desired
            elif desired < self.max_panic_pods:
                desired, bounded_by = self.max_panic_pods, "panic (no scale-down)"
        else:
            desired, bounded_by = desired_stable, bound_stable

        if spec.reachable and self._delay is not None:
            self._delay.record(now, desired)
            delayed = int(self._delay.current())
            if delayed != desired:
                desired, bounded_by = delayed, "scale-down delay"

        tbc = spec.target_burst_capacity
        ebc = excess_burst_capacity(tbc, ready_count, spec.total_value, observed_panic) if tbc else 0
        return _new_result(ScaleResult, (desired, ebc, True, desired_stable, desired_panic, dspc, dppc, bounded_by))


def _clamp(raw: int, low: int, high: int) -> tuple[int, str | None]:
    """min(max(raw, low), high) with the name of the limit that bit."""
    if raw < low:
        return (low, "scale-down rate") if low <= high else (high, "scale-up rate")
    if raw > high:
        return high, "scale-up rate"
    return raw, None
