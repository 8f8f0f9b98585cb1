"""Spec derivation as Knative does it: metric target/total and the panic window length.

Mirrors `pkg/reconciler/autoscaling/resources/{target,metric}.go`.
"""

from __future__ import annotations

import math

TARGET_MIN = 0.01


def round_half_away(value: float) -> float:
    """Go's math.Round: halves round away from zero (Python's round() is banker's)."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def round_digits(value: float, digits: int = 6) -> float:
    """Knative's roundToNDigits: kills float residues in window averages, and the sign of a residue that
    rounds to zero (`+ 0.0` turns -0.0 into 0.0, which users would otherwise read as "concurrency -0.0")."""
    scale = 10.0**digits
    return round_half_away(value * scale) / scale + 0.0


def resolve_metric_target(
    *,
    metric: str,
    container_concurrency: int,
    target_annotation: float | None,
    utilization_annotation_percent: float | None,
    cc_target_fraction: float,
    cc_target_default: float,
    rps_target_default: float,
    rps_target_utilization: float,
) -> tuple[float, float]:
    """Return (target, total) per replica, as `ResolveMetricTarget` does."""
    if metric == "rps":
        total = rps_target_default
        utilization = rps_target_utilization
    else:
        total = float(container_concurrency) if container_concurrency else cc_target_default
        utilization = cc_target_fraction
    if target_annotation is not None:
        total = target_annotation
        if metric != "rps" and container_concurrency:
            total = min(target_annotation, float(container_concurrency))
    if utilization_annotation_percent is not None:
        utilization = utilization_annotation_percent / 100.0
    return max(TARGET_MIN, total * utilization), total


def panic_window_seconds(stable_window: float, panic_window_percentage: float) -> float:
    """Panic window = round(stable x pct / 100) to whole seconds, at least 1 s (MakeMetric)."""
    return max(1.0, round_half_away(stable_window * panic_window_percentage / 100.0))
