"""Profiles, overrides and the errors the spec room turns into 400s."""

from __future__ import annotations

import math

import pytest

from tide.autoscale import PROFILE_NAMES, resolve_config
from tide.errors import FieldError


def resolve(profile: str | None = None, **overrides: float | int | None):  # type: ignore[no-untyped-def]
    return resolve_config(profile, overrides, min_replicas=0, max_replicas=10, concurrency=4)


def test_profile_names() -> None:
    assert set(PROFILE_NAMES) == {"knative", "coreweave", "baseten", "development"}


def test_coreweave_is_the_default_profile() -> None:
    cfg = resolve(None)
    assert cfg.profile == "coreweave"
    assert (cfg.stable_window, cfg.panic_window, cfg.target_utilization) == (180, 23, 0.85)
    assert (cfg.max_scale_up_rate, cfg.max_scale_down_rate, cfg.rate_period) == (20, 1.1, 15)
    assert (cfg.scale_down_delay, cfg.scale_to_zero_retention, cfg.scale_to_zero_grace_period) == (60, 1800, 60)


def test_knative_profile_matches_knative_defaults() -> None:
    cfg = resolve("knative")
    assert (cfg.stable_window, cfg.panic_window, cfg.panic_threshold) == (60, 6, 2.0)
    assert (cfg.max_scale_up_rate, cfg.max_scale_down_rate, cfg.scale_down_delay) == (1000, 2, 0)
    assert (cfg.scale_to_zero_retention, cfg.scale_to_zero_grace_period, cfg.target_burst_capacity) == (0, 30, 211)
    assert cfg.target == pytest.approx(4 * 0.7)


def test_baseten_profile_has_no_panic_and_unbounded_rates() -> None:
    cfg = resolve("baseten")
    assert not cfg.panic_enabled
    assert math.isinf(cfg.max_scale_up_rate) and math.isinf(cfg.max_scale_down_rate)
    assert (cfg.stable_window, cfg.scale_down_delay, cfg.scale_to_zero_retention) == (60, 900, 0)


def test_development_pins_replicas_window_delay_and_concurrency() -> None:
    cfg = resolve_config(
        "development", {"window": 300, "scaleDownDelay": 5}, min_replicas=3, max_replicas=9, concurrency=32
    )
    assert (cfg.min_replicas, cfg.max_replicas, cfg.concurrency) == (0, 1, 1)
    assert (cfg.stable_window, cfg.scale_down_delay) == (60, 900)


def test_overrides_replace_profile_defaults_and_none_keeps_them() -> None:
    cfg = resolve("knative", targetUtilization=50, window=120, scaleDownDelay=None, scaleToZeroRetention=600)
    assert cfg.target_utilization == 0.5
    assert cfg.stable_window == 120 and cfg.panic_window == 12
    assert cfg.scale_down_delay == 0
    assert cfg.scale_to_zero_retention == 600


def test_panic_threshold_override_enables_panic_on_baseten() -> None:
    assert resolve("baseten", panicThresholdPercentage=300).panic_threshold == 3.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"window": 5}, "autoscaling.window"),
        ({"window": 3601}, "autoscaling.window"),
        ({"window": 60.5}, "autoscaling.window"),
        ({"targetUtilization": 0}, "autoscaling.targetUtilization"),
        ({"targetUtilization": 101}, "autoscaling.targetUtilization"),
        ({"panicWindowPercentage": 0}, "autoscaling.panicWindowPercentage"),
        ({"panicThresholdPercentage": 100}, "autoscaling.panicThresholdPercentage"),
        ({"maxScaleUpRate": 1}, "autoscaling.maxScaleUpRate"),
        ({"maxScaleDownRate": 0.5}, "autoscaling.maxScaleDownRate"),
        ({"scaleDownDelay": -1}, "autoscaling.scaleDownDelay"),
        ({"scaleToZeroRetention": -5}, "autoscaling.scaleToZeroRetention"),
        ({"scaleToZeroGracePeriod": 4000}, "autoscaling.scaleToZeroGracePeriod"),
        ({"initialScale": 11}, "autoscaling.initialScale"),
        ({"initialScale": 1.5}, "autoscaling.initialScale"),
        ({"bogus": 1}, "autoscaling.bogus"),
    ],
)
def test_out_of_range_override_names_the_field(overrides: dict[str, float], field: str) -> None:
    with pytest.raises(FieldError) as caught:
        resolve_config("knative", overrides, min_replicas=0, max_replicas=10, concurrency=4)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_replicas": 3, "max_replicas": 2, "concurrency": 1}, "autoscaling.max"),
        ({"min_replicas": -1, "max_replicas": 2, "concurrency": 1}, "autoscaling.min"),
        ({"min_replicas": 0, "max_replicas": 2, "concurrency": 0}, "autoscaling.concurrency"),
        ({"min_replicas": 0, "max_replicas": 2, "concurrency": 1, "priority": 1001}, "autoscaling.priority"),
    ],
)
def test_bad_replica_bounds_name_the_field(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(FieldError) as caught:
        resolve_config("knative", {}, **kwargs)
    assert caught.value.field == field


def test_unknown_profile_lists_the_choices() -> None:
    with pytest.raises(FieldError) as caught:
        resolve("fast")
    assert caught.value.field == "autoscaling.profile"
    assert "knative" in caught.value.message


def test_initial_scale_zero_needs_min_zero() -> None:
    with pytest.raises(FieldError) as caught:
        resolve_config("knative", {"initialScale": 0}, min_replicas=1, max_replicas=3, concurrency=1)
    assert caught.value.field == "autoscaling.initialScale"
