"""Knative-exact autoscaling decisions (pure: no I/O, the clock is a parameter)."""

from tide.autoscale.autoscaler import Autoscaler, ScaleDecision
from tide.autoscale.config import (
    DEFAULT_PROFILE,
    OVERRIDE_NAMES,
    PROFILE_NAMES,
    AutoscalerConfig,
    ConfigError,
    resolve_config,
)

__all__ = [
    "DEFAULT_PROFILE",
    "OVERRIDE_NAMES",
    "PROFILE_NAMES",
    "Autoscaler",
    "AutoscalerConfig",
    "ConfigError",
    "ScaleDecision",
    "resolve_config",
]
