"""Every autoscaling field in one table: API name, kind, range and each built-in profile's default.

The deployment spec (tide/spec), the simulator's `--policies` and scenario files, and `resolve_config`
all derive from this table: a field is added or changed here and nowhere else. Values are in API units
(percentages as written in API.md, durations in seconds). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tide.errors import FieldError

Kind = Literal["duration", "percent", "number", "count"]
UNBOUNDED = math.inf
BUILTIN_PROFILES: tuple[str, ...] = ("coreweave", "knative", "baseten", "development")


@dataclass(frozen=True)
class Field:
    """One autoscaling field. `low`/`high` None: unbounded on that side; `whole`: whole seconds (for a
    duration) or a whole number. `defaults` holds each built-in profile's value (tuning fields only)."""

    name: str
    kind: Kind
    low: float | None
    high: float | None
    doc: str
    defaults: Mapping[str, float] | None = None
    low_inclusive: bool = True
    whole: bool = False

    @property
    def path(self) -> str:
        return f"autoscaling.{self.name}"

    def check(self, value: object) -> float:
        """The value as a float, or FieldError naming the field."""
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise FieldError(self.path, f"must be a number, got {value!r}")
        low, high = self.low, self.high
        if low is not None and (value < low or (value == low and not self.low_inclusive)):
            op = ">=" if self.low_inclusive else ">"
            raise FieldError(self.path, f"must be {op} {low:g}, got {value:g}")
        if high is not None and value > high:
            raise FieldError(self.path, f"must be <= {high:g}, got {value:g}")
        if self.whole and value != math.floor(value):
            what = "whole seconds" if self.kind == "duration" else "a whole number"
            raise FieldError(self.path, f"must be {what}, got {value:g}{'s' if self.kind == 'duration' else ''}")
        return float(value)


def _d(knative: float, coreweave: float, baseten: float, development: float | None = None) -> dict[str, float]:
    dev = knative if development is None else development
    return {"knative": knative, "coreweave": coreweave, "baseten": baseten, "development": dev}


# The profile values are API.md's table, except baseten's retention (0: Baseten documents a scale-down
# delay only, issue 18). development = knative with the pins in config.py (window 60 s, delay 900 s).
TUNING: tuple[Field, ...] = (
    Field("targetUtilization", "percent", 1, 100, "per-replica target as % of concurrency", _d(70, 85, 70)),
    Field("window", "duration", 6, 3600, "stable window", _d(60, 180, 60), whole=True),
    Field("panicWindowPercentage", "percent", 1, 100, "panic window as % of the stable window", _d(10, 13, 10)),
    Field(
        "panicThresholdPercentage",
        "number",
        110,
        1000,
        "panic when the panic window needs this % of ready capacity",
        _d(200, 200, UNBOUNDED),
    ),
    Field("maxScaleUpRate", "number", 1, None, "growth factor per tick", _d(1000, 20, UNBOUNDED), low_inclusive=False),
    Field("maxScaleDownRate", "number", 1, None, "shrink divisor per tick", _d(2, 1.1, UNBOUNDED), low_inclusive=False),
    Field("scaleDownDelay", "duration", 0, 3600, "hold the highest count this long", _d(0, 60, 900, 900), whole=True),
    Field("scaleToZeroRetention", "duration", 0, 86400, "keep the last replica after inactive", _d(0, 1800, 0)),
    Field("scaleToZeroGracePeriod", "duration", 0, 3600, "gateway in the path this long before zero", _d(30, 60, 0)),
    Field("initialScale", "count", 0, None, "replicas a new deployment starts with", _d(1, 1, 1), whole=True),
    Field("activationScale", "count", 0, None, "fewest replicas a wake from zero starts", _d(0, 0, 0), whole=True),
)
# Replica fields: validated here too (spec defaults live with the spec: min 1, max = max(1, min), ...).
REPLICAS: tuple[Field, ...] = (
    Field("min", "count", 0, None, "fewest replicas", whole=True),
    Field("max", "count", 1, None, "most replicas", whole=True),
    Field("concurrency", "count", 1, None, "per-replica concurrent requests the target is a share of", whole=True),
    Field("priority", "count", 0, 1000, "scheduling order under contention", whole=True),
)
TUNING_BY_NAME: dict[str, Field] = {f.name: f for f in TUNING}
REPLICAS_BY_NAME: dict[str, Field] = {f.name: f for f in REPLICAS}
TUNING_NAMES: tuple[str, ...] = tuple(TUNING_BY_NAME)


def profile_defaults(profile: str) -> dict[str, float]:
    """A built-in profile's value of every tuning field."""
    return {f.name: f.defaults[profile] for f in TUNING if f.defaults is not None}
