"""Autoscaler configuration: the profile registry, a deployment's overrides, and the resolved config.

Field names, ranges and the built-in profiles' defaults are in fields.py (one table)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tide.autoscale.fields import (
    BUILTIN_PROFILES,
    REPLICAS_BY_NAME,
    TUNING_BY_NAME,
    TUNING_NAMES,
    UNBOUNDED,
    profile_defaults,
)
from tide.autoscale.targets import TARGET_MIN, panic_window_seconds
from tide.errors import FieldError

__all__ = ["UNBOUNDED"]

PROFILE_NAMES: tuple[str, ...] = BUILTIN_PROFILES
DEFAULT_PROFILE = "coreweave"
KNATIVE_TICK_S = 2.0
DEFAULT_ACTIVATION_TIMEOUT_S = 600.0 + 30.0  # progress deadline + activationTimeoutBuffer


@dataclass(frozen=True, slots=True)
class AutoscalerConfig:
    """Everything one deployment's autoscaler needs. Durations are seconds.

    Rates are per `rate_period` seconds (0 = relative to the ready count at every decision, as in
    Knative); `math.inf` means unbounded. `panic_threshold` is a ratio of ready replicas
    (2.0 = 200 %); `math.inf` disables panic mode.
    """

    profile: str
    min_replicas: int
    max_replicas: int
    concurrency: int  # per-replica capacity (Knative's TotalValue)
    target_utilization: float  # fraction of `concurrency` to aim at
    stable_window: float
    panic_window_percentage: float
    panic_threshold: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    rate_period: float
    scale_down_delay: float
    scale_to_zero_retention: float
    scale_to_zero_grace_period: float
    initial_scale: int
    activation_scale: int = 0
    target_burst_capacity: float = 0.0
    tick_interval: float = KNATIVE_TICK_S
    priority: int = 0
    aggregation: str = "linear"  # or "weighted" (Knative's weighted-exponential)
    metric: str = "concurrency"  # or "rps"
    enable_scale_to_zero: bool = True
    activation_timeout: float = DEFAULT_ACTIVATION_TIMEOUT_S
    policy: str = "kpa"  # the registered policy (tide/autoscale/policy.py) the profile runs
    options: tuple[tuple[str, float], ...] = ()  # the policy's own fields, (API name, value)

    def option(self, name: str, default: float | None = None) -> float:
        """A policy option's value (its profile default unless the deployment set it)."""
        for key, value in self.options:
            if key == name:
                return value
        if default is None:
            raise KeyError(f"autoscaling.{name} is not an option of policy {self.policy!r}")
        return default

    @property
    def target(self) -> float:
        """Per-replica target concurrency: concurrency x utilization (at least 0.01)."""
        return max(TARGET_MIN, self.concurrency * self.target_utilization)

    @property
    def panic_window(self) -> float:
        return panic_window_seconds(self.stable_window, self.panic_window_percentage)

    @property
    def panic_enabled(self) -> bool:
        return not math.isinf(self.panic_threshold)


# Development: Knative's mechanics with the pins API.md lists (applied in resolve_config).
_DEVELOPMENT_PINS = {"min": 0, "max": 1, "concurrency": 1, "window": 60.0, "scaleDownDelay": 900.0}
# Profile settings that are not deployment fields.
_RATE_PERIOD = {"knative": 0.0, "coreweave": 15.0, "baseten": 0.0, "development": 0.0}
_TBC = {"knative": 211.0, "coreweave": 0.0, "baseten": 0.0, "development": 211.0}
OVERRIDE_NAMES: tuple[str, ...] = TUNING_NAMES


@dataclass(frozen=True)
class OptionRange:
    """A policy's own field: its default and inclusive range."""

    default: float
    low: float
    high: float
    integer: bool = False


@dataclass(frozen=True)
class Profile:
    """A named configuration: which policy runs and the field defaults it starts from."""

    name: str
    policy: str
    defaults: Mapping[str, float]
    rate_period: float = 0.0
    target_burst_capacity: float = 0.0
    options: Mapping[str, OptionRange] = field(default_factory=dict)


_PROFILE_TABLE: dict[str, Profile] = {
    name: Profile(name, "kpa", profile_defaults(name), _RATE_PERIOD[name], _TBC[name]) for name in PROFILE_NAMES
}


def register_profile(
    name: str,
    *,
    policy: str,
    defaults: Mapping[str, float],
    base: str = "knative",
    rate_period: float = 0.0,
    target_burst_capacity: float | None = None,
    options: Mapping[str, OptionRange] | None = None,
) -> None:
    """A profile running `policy`: the `base` profile's field defaults with `defaults` on top."""
    for key in defaults:
        if key not in TUNING_BY_NAME:
            raise FieldError(f"autoscaling.{key}", f"unknown autoscaling field; known: {', '.join(OVERRIDE_NAMES)}")
    parent = _PROFILE_TABLE[base]
    tbc = parent.target_burst_capacity if target_burst_capacity is None else target_burst_capacity
    merged = {**parent.defaults, **{k: float(v) for k, v in defaults.items()}}
    _PROFILE_TABLE[name] = Profile(name, policy, merged, rate_period, tbc, dict(options or {}))


def unregister_profile(name: str) -> None:
    if name not in PROFILE_NAMES:
        _PROFILE_TABLE.pop(name, None)


def option_fields() -> dict[str, OptionRange]:
    """The policy-specific fields of every registered profile, by API name."""
    return {name: spec for profile in _PROFILE_TABLE.values() for name, spec in profile.options.items()}


def profile_names() -> tuple[str, ...]:
    """Every selectable profile: the built-in ones, then registered plug-ins."""
    return tuple(_PROFILE_TABLE)


def resolve_config(
    profile: str | None,
    overrides: Mapping[str, float | int | None],
    *,
    min_replicas: int,
    max_replicas: int,
    concurrency: int,
    priority: int = 0,
) -> AutoscalerConfig:
    """Profile defaults + the deployment's overrides -> a validated AutoscalerConfig.

    Raises FieldError naming the API field (`autoscaling.<name>`) for any bad value.
    """
    name = DEFAULT_PROFILE if profile is None else profile
    chosen = _PROFILE_TABLE.get(name)
    if chosen is None:
        raise FieldError("autoscaling.profile", f"unknown profile {name!r}; choose one of {', '.join(profile_names())}")
    for key in overrides:
        if key not in TUNING_BY_NAME and key not in chosen.options:
            known = ", ".join((*OVERRIDE_NAMES, *chosen.options))
            raise FieldError(f"autoscaling.{key}", f"unknown autoscaling field for profile {name!r}; known: {known}")
    values: dict[str, float] = dict(chosen.defaults)
    options = {key: spec.default for key, spec in chosen.options.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in chosen.options:
            options[key] = _check_option(key, value, chosen.options[key])
        else:
            values[key] = TUNING_BY_NAME[key].check(value)

    _check_replicas(min_replicas, max_replicas, concurrency, priority)
    if name == "development":
        values["window"], values["scaleDownDelay"] = _DEVELOPMENT_PINS["window"], _DEVELOPMENT_PINS["scaleDownDelay"]
        min_replicas, max_replicas = int(_DEVELOPMENT_PINS["min"]), int(_DEVELOPMENT_PINS["max"])
        concurrency = int(_DEVELOPMENT_PINS["concurrency"])

    initial = int(values["initialScale"])
    if initial > max_replicas:
        raise FieldError("autoscaling.initialScale", f"must be <= autoscaling.max ({max_replicas}), got {initial}")
    if initial == 0 and min_replicas > 0:
        raise FieldError(
            "autoscaling.initialScale", f"0 is only allowed with autoscaling.min 0 (min is {min_replicas})"
        )
    activation = int(values["activationScale"])
    if activation > max_replicas:
        raise FieldError(
            "autoscaling.activationScale", f"must be <= autoscaling.max ({max_replicas}), got {activation}"
        )

    return AutoscalerConfig(
        profile=name,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        concurrency=concurrency,
        target_utilization=values["targetUtilization"] / 100.0,
        stable_window=values["window"],
        panic_window_percentage=values["panicWindowPercentage"],
        panic_threshold=values["panicThresholdPercentage"] / 100.0,
        max_scale_up_rate=values["maxScaleUpRate"],
        max_scale_down_rate=values["maxScaleDownRate"],
        rate_period=chosen.rate_period,
        scale_down_delay=values["scaleDownDelay"],
        scale_to_zero_retention=values["scaleToZeroRetention"],
        scale_to_zero_grace_period=values["scaleToZeroGracePeriod"],
        initial_scale=initial,
        activation_scale=activation,
        target_burst_capacity=chosen.target_burst_capacity,
        priority=priority,
        policy=chosen.policy,
        options=tuple(sorted(options.items())),
    )


def _check_option(name: str, value: float, spec: OptionRange) -> float:
    field_name = f"autoscaling.{name}"
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise FieldError(field_name, f"must be a number, got {value!r}")
    if not spec.low <= value <= spec.high:
        raise FieldError(field_name, f"must be within {spec.low:g}-{spec.high:g}, got {value:g}")
    if spec.integer and value != math.floor(value):
        raise FieldError(field_name, f"must be a whole number, got {value:g}")
    return float(value)


def _check_replicas(min_replicas: int, max_replicas: int, concurrency: int, priority: int) -> None:
    given = {"min": min_replicas, "max": max_replicas, "concurrency": concurrency, "priority": priority}
    for name, value in given.items():
        REPLICAS_BY_NAME[name].check(value)
    if max_replicas < min_replicas:
        raise FieldError("autoscaling.max", f"must be >= autoscaling.min ({min_replicas}), got {max_replicas}")


def with_changes(config: AutoscalerConfig, **changes: object) -> AutoscalerConfig:
    """A copy with some fields changed (the simulator uses it for what-if policies)."""
    return replace(config, **changes)  # type: ignore[arg-type]
