"""Policy specs on the command line: `knative`, `coreweave:window=120s:scaleDownDelay=0`, `oracle`.

`parking=1` / `parking=0` in a spec (`knative:parking=1`) says whether its scale-down parks replicas
(`autoscaling.parking.enabled`); without it, `--parking` decides, and by default the profile does, as live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tide.autoscale import OVERRIDE_NAMES, AutoscalerConfig, profile_names, resolve_config
from tide.autoscale.config import option_fields
from tide.errors import FieldError
from tide.sim.engine import SimSettings
from tide.spec.deployment import default_parking_retention, parks_by_default
from tide.spec.durations import parse_duration_option

ORACLE = "oracle"
PARKING_KEY = "parking"
PARKING_CHOICES = ("profile", "on", "off")
POLICIES = "--policies"  # the field a bad policy spec is reported under (the `tide sim` option)


@dataclass(frozen=True)
class Policy:
    name: str
    config: AutoscalerConfig | None  # None: the oracle
    parks: bool = False  # its scale-down parks replicas
    retention: float | None = None  # its parked replicas' retention (None: the settings')

    @property
    def is_oracle(self) -> bool:
        return self.config is None


@dataclass(frozen=True)
class ParkingSettings:
    """The command line's parking: which policies park (`mode`, unless a spec says `parking=`), and how a
    parked replica behaves (its wake time, its cost as a fraction of a running one, its retention)."""

    mode: str = "profile"
    wake_time: float = 1.0
    parked_cost: float = 0.05
    retention: float | None = None  # None: each policy's profile default, as live (default_parking_retention)

    def apply(self, settings: SimSettings) -> SimSettings:
        settings = replace(settings, wake_time=self.wake_time, parked_cost=self.parked_cost)
        return settings if self.retention is None else replace(settings, parking_retention=self.retention)

    def describe(self) -> dict[str, object]:
        return {
            "parking": self.mode,
            "wake_time_s": self.wake_time,
            "parked_cost": self.parked_cost,
            "parking_retention_s": self.retention,  # None: the profile's default
        }

    def retention_text(self) -> str:
        if self.retention is not None:
            return f"retention {self.retention:g}s"
        defaults = ", ".join(
            f"{p} {default_parking_retention(p):g}s" for p in sorted(profile_names()) if parks_by_default(p)
        )
        return f"retention the profile's ({defaults}; others {default_parking_retention(None):g}s)"


def parse_duration(text: str, field: str = "duration") -> float:
    """'15s', '2m', '1h', '500ms' or a plain number of seconds: tide.spec's parser, with the sim's message;
    FieldError naming `field` if bad."""
    try:
        seconds = parse_duration_option(text.strip(), field)
    except FieldError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise FieldError(field, f"{text!r} is not a duration (use e.g. 15s, 2m, 1h, 500ms)")
    return seconds


def parse_policies(
    spec: str,
    *,
    min_replicas: int,
    max_replicas: int,
    concurrency: int,
    parking: str = "profile",
    retention: float | None = None,
) -> list[Policy]:
    """`parking`: for specs without `parking=`, "profile" (the profile's default, as live), "on" or "off";
    `retention`: every policy's parked retention (None: each profile's default, as live)."""
    if parking not in PARKING_CHOICES:
        raise FieldError("--parking", f"must be one of {', '.join(PARKING_CHOICES)}, not {parking!r}")
    policies: list[Policy] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        if entry == ORACLE:
            policies.append(Policy(ORACLE, None))
            continue
        profile, *settings = entry.split(":")
        if profile not in profile_names():
            raise FieldError(
                POLICIES, f"unknown policy {profile!r}; choose from {', '.join((*profile_names(), ORACLE))}"
            )
        overrides: dict[str, float | int | None] = {}
        parks = parks_by_default(profile) if parking == "profile" else parking == "on"
        for setting in settings:
            key, sep, value = setting.partition("=")
            if key == PARKING_KEY and sep:
                if value.strip() not in ("0", "1"):
                    raise FieldError(POLICIES, f"{entry!r}: parking must be 0 or 1")
                parks = value.strip() == "1"
                continue
            known = (*OVERRIDE_NAMES, *option_fields())
            if not sep or key not in known:
                raise FieldError(
                    POLICIES, f"{entry!r}: expected key=value with key in {', '.join((*known, PARKING_KEY))}"
                )
            overrides[key] = parse_duration(value, POLICIES)
        # A replay starts with nothing running: the first request wakes the deployment.
        if min_replicas == 0 and "initialScale" not in overrides:
            overrides["initialScale"] = 0
        try:
            config = resolve_config(
                profile, overrides, min_replicas=min_replicas, max_replicas=max_replicas, concurrency=concurrency
            )
        except FieldError as exc:  # name the entry too: `autoscaling.window` alone does not say which
            raise FieldError(POLICIES, f"{entry!r}: {exc}") from None
        held = default_parking_retention(profile) if retention is None else retention
        policies.append(Policy(entry, config, parks, held))
    if not policies:
        raise FieldError(POLICIES, "no policies given")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise FieldError(
            POLICIES, f"policies listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    return policies
