"""Autoscaling decisions (pure: no I/O, the clock is a parameter): a policy plug-in (Knative's KPA for the
built-in profiles) inside one shared wrapper."""

from tide.autoscale.autoscaler import Autoscaler, ScaleDecision
from tide.autoscale.config import (
    DEFAULT_PROFILE,
    OVERRIDE_NAMES,
    PROFILE_NAMES,
    AutoscalerConfig,
    OptionRange,
    profile_names,
    resolve_config,
)
from tide.autoscale.policy import (
    NO_DECISION,
    LoadHistory,
    Policy,
    PolicyContext,
    Proposal,
    policy_names,
    register_policy,
)

__all__ = [
    "DEFAULT_PROFILE",
    "NO_DECISION",
    "OVERRIDE_NAMES",
    "PROFILE_NAMES",
    "Autoscaler",
    "AutoscalerConfig",
    "LoadHistory",
    "OptionRange",
    "Policy",
    "PolicyContext",
    "Proposal",
    "ScaleDecision",
    "policy_names",
    "profile_names",
    "register_policy",
    "resolve_config",
]
