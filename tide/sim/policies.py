"""Policy specs on the command line: `knative`, `coreweave:window=120s:scaleDownDelay=0`, `oracle`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tide.autoscale import OVERRIDE_NAMES, AutoscalerConfig, ConfigError, profile_names, resolve_config
from tide.autoscale.config import option_fields
from tide.spec.durations import parse_duration_option
from tide.spec.errors import SpecError

ORACLE = "oracle"


class PolicyError(ValueError):
    """A --policies entry cannot be understood."""


@dataclass(frozen=True)
class Policy:
    name: str
    config: AutoscalerConfig | None  # None: the oracle

    @property
    def is_oracle(self) -> bool:
        return self.config is None


def parse_duration(text: str) -> float:
    """'15s', '2m', '1h', '500ms' or a plain number of seconds: tide.spec's parser, with the sim's error."""
    try:
        seconds = parse_duration_option(text.strip(), "duration")
    except SpecError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise PolicyError(f"{text!r} is not a duration (use e.g. 15s, 2m, 1h, 500ms)")
    return seconds


def parse_policies(spec: str, *, min_replicas: int, max_replicas: int, concurrency: int) -> list[Policy]:
    policies: list[Policy] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        if entry == ORACLE:
            policies.append(Policy(ORACLE, None))
            continue
        profile, *settings = entry.split(":")
        if profile not in profile_names():
            raise PolicyError(f"unknown policy {profile!r}; choose from {', '.join((*profile_names(), ORACLE))}")
        overrides: dict[str, float | int | None] = {}
        for setting in settings:
            key, sep, value = setting.partition("=")
            known = (*OVERRIDE_NAMES, *option_fields())
            if not sep or key not in known:
                raise PolicyError(f"{entry!r}: expected key=value with key in {', '.join(known)}")
            overrides[key] = parse_duration(value)
        # A replay starts with nothing running: the first request wakes the deployment.
        if min_replicas == 0 and "initialScale" not in overrides:
            overrides["initialScale"] = 0
        try:
            config = resolve_config(
                profile, overrides, min_replicas=min_replicas, max_replicas=max_replicas, concurrency=concurrency
            )
        except ConfigError as exc:
            raise PolicyError(f"{entry!r}: {exc}") from exc
        policies.append(Policy(entry, config))
    if not policies:
        raise PolicyError("no policies given")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise PolicyError(f"policies listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return policies
