"""The KPA reconciler's side of a decision: min/max/initial bounds and the scale-to-zero state machine.

Mirrors `pkg/reconciler/autoscaling/kpa/scaler.go` (`scale`, `handleScaleToZero`) and the Active
condition of `kpa.go` (ALGORITHM.md sections 6 and 7). Pure: ages are passed in, never read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

ACTIVATION_TIMEOUT_BUFFER_S = 30.0
SKS_PROXY_REQUEUE_S = 3.0


class Activity(StrEnum):
    """The PodAutoscaler's Active condition: True, Unknown (activating) or False."""

    ACTIVE = "active"
    ACTIVATING = "activating"
    INACTIVE = "inactive"


class ScaleToZeroInput(NamedTuple):
    activity: Activity
    activity_age: float  # seconds since the Active condition last changed
    stable_window: float
    grace_period: float
    retention: float  # scale-to-zero-pod-retention-period
    activation_timeout: float  # progress deadline + 30 s
    reachable: bool = True
    enable_scale_to_zero: bool = True
    probe_activator: bool = True  # False when TBC == -1 (activator always in the path)
    activator_probe_ok: bool = True
    sks_proxy: bool = False  # SKS already in Proxy mode
    proxy_for: float = 0.0  # seconds since the activator endpoints were populated


class ScaleToZeroStep(NamedTuple):
    """`scale` = the value returned; `apply` = whether replicas are patched to it."""

    scale: int
    apply: bool
    requeue_after: float | None = None
    async_probe: bool = False
    reason: str = ""


def handle_scale_to_zero(inp: ScaleToZeroInput) -> ScaleToZeroStep:
    """Called only when the bounded desired scale is 0."""
    return scale_to_zero_step(*inp)


_step = tuple.__new__  # the autoscaler calls this every tick for idle deployments: keep it cheap


def scale_to_zero_step(
    activity: Activity,
    age: float,
    stable_window: float,
    grace_period: float,
    retention: float,
    activation_timeout: float,
    reachable: bool = True,
    enable_scale_to_zero: bool = True,
    probe_activator: bool = True,
    activator_probe_ok: bool = True,
    sks_proxy: bool = False,
    proxy_for: float = 0.0,
) -> ScaleToZeroStep:
    """`handle_scale_to_zero` with positional arguments (see ScaleToZeroInput for their meaning)."""
    if not enable_scale_to_zero:
        return _step(ScaleToZeroStep, (1, True, None, False, "scale to zero disabled"))
    if activity is Activity.ACTIVATING:
        if age > activation_timeout:
            return _step(ScaleToZeroStep, (0, True, None, False, "activation timed out"))
        return _step(ScaleToZeroStep, (-1, False, activation_timeout, False, "activating"))
    if activity is Activity.ACTIVE:
        if age >= stable_window:
            requeue = SKS_PROXY_REQUEUE_S if sks_proxy else None
            return _step(ScaleToZeroStep, (0, False, requeue, False, "going inactive"))
        return _step(ScaleToZeroStep, (1, True, stable_window - age, False, "scale-to-zero window"))
    if probe_activator and not activator_probe_ok:
        return _step(ScaleToZeroStep, (0, False, None, True, "activator not ready"))
    last_pod = retention if reachable else 0.0
    if age >= (grace_period if grace_period > last_pod else last_pod):
        return _step(ScaleToZeroStep, (0, True, None, False, "scale to zero"))
    if last_pod > 0 and age < last_pod:
        return _step(ScaleToZeroStep, (0, False, last_pod - age, False, "scale-to-zero retention"))
    remaining = grace_period - proxy_for
    if remaining <= 0:
        return _step(ScaleToZeroStep, (0, True, None, False, "scale to zero"))
    return _step(ScaleToZeroStep, (0, False, remaining, False, "scale-to-zero grace"))


def bound_desired(
    desired: int,
    min_scale: int,
    max_scale: int,
    initial_scale: int,
    initialized: bool,
    reachable: bool = True,
) -> tuple[int, str | None]:
    """Apply min/max (max 0 = unlimited) and, before initialization, the initial scale."""
    low = min_scale if reachable else 0
    label = "min"
    if initial_scale > 1 and not initialized and reachable and initial_scale > low:
        low, label = initial_scale, "initial scale"
    if desired < low:
        return low, label
    if max_scale and desired > max_scale:
        return max_scale, "max"
    return desired, None


def next_activity(previous: Activity, want: int, ready: int, min_ready: int) -> Activity:
    """`computeActiveCondition`: the PA's Active condition after a reconcile."""
    if want == 0 or min_ready == 0:
        return Activity.INACTIVE
    if ready < min_ready:
        if previous is Activity.INACTIVE and want <= 0:
            return previous
        return Activity.ACTIVATING
    if want > 0 or previous is not Activity.INACTIVE:
        return Activity.ACTIVE
    return previous
