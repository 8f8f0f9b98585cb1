"""A contention scenario: one declared inventory and several deployments, each replaying its own trace.

Parsed from a mapping as loaded from YAML (pure: trace files are named here, read elsewhere):

    inventory:                      # the shape of `tide up --inventory` (docs/SCHEDULING.md)
      instanceTypes: [{id: H100-8x, gpuModel: H100, gpus: 8}]
      instances: [{type: H100-8x, zone: us-east-04a, count: 2}]
    deployments:
      - name: chat
        trace: azure_llm_2023/AzureLLMInferenceTrace_conv.csv   # relative to --traces-dir
        instanceType: H100-8x
        gpuCount: 2
        priority: 800
        min: 1
        max: 8
        profile: coreweave
        autoscaling: {window: 60s}

Errors name the field at fault, e.g. `deployments[1].priority: must be within 0-1000, got 2000`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tide.autoscale import DEFAULT_PROFILE, OVERRIDE_NAMES, AutoscalerConfig, profile_names, resolve_config
from tide.autoscale.config import option_fields
from tide.errors import FieldError
from tide.scheduling import (
    CAPACITY_CLASSES,
    DeploymentRequest,
    Inventory,
    declared_inventory,
    parse_capacity_class,
    schedule,
)
from tide.scheduling.errors import reject_unknown_keys, require_mapping
from tide.sim.policies import parse_duration
from tide.sim.readers import FORMATS

DEFAULT_MAX_REPLICAS = 1000  # as `tide sim --max-replicas`: the inventory, not max, is meant to bind
DEFAULT_CONCURRENCY = 8
_TOP_KEYS = {"inventory", "deployments"}
_DEPLOYMENT_KEYS = {
    "name",
    "trace",
    "format",
    "select",
    "jitter",
    "offset",
    "timeScale",
    "instanceType",
    "gpuCount",
    "capacityClasses",
    "zones",
    "priority",
    "min",
    "max",
    "concurrency",
    "profile",
    "autoscaling",
    "coldStart",
}
# resolve_config names these `autoscaling.<key>`; in a scenario they sit on the deployment itself.
_FLAT_AUTOSCALING = {"min", "max", "priority", "concurrency", "profile"}


@dataclass(frozen=True)
class TraceSource:
    """Which requests a deployment receives: a trace file, shifted by `offset` seconds and stretched by
    `time_scale` (2 = half the request rate over twice the time; service times are kept)."""

    path: str
    format: str = "auto"
    select: str | None = None
    jitter: float = 0.0
    offset: float = 0.0
    time_scale: float = 1.0


@dataclass(frozen=True)
class DeploymentScenario:
    name: str
    trace: TraceSource
    config: AutoscalerConfig  # carries min, max, priority and concurrency too
    instance_type: str
    gpu_count: int = 1
    capacity_classes: tuple[str, ...] = CAPACITY_CLASSES
    zones: tuple[str, ...] = ()
    cold_start: float | None = None  # None: the command line's --cold-start

    def request(self, replicas: int, min_replicas: int) -> DeploymentRequest:
        return DeploymentRequest(
            deployment_id=self.name,
            replicas=replicas,
            instance_type=self.instance_type,
            gpu_count=self.gpu_count,
            capacity_classes=self.capacity_classes,
            zones=self.zones,
            priority=self.config.priority,
            min_replicas=min_replicas,
        )


@dataclass(frozen=True)
class Scenario:
    inventory: Inventory
    deployments: tuple[DeploymentScenario, ...]


def parse_scenario(raw: Any) -> Scenario:
    root = _mapping(raw, "scenario")
    _reject_unknown(root, _TOP_KEYS, "")
    if "inventory" not in root:
        raise FieldError("inventory", "required: instanceTypes and instances, as in docs/SCHEDULING.md")
    try:
        inventory = declared_inventory(root["inventory"])
    except FieldError as exc:
        raise exc.under("inventory") from None
    entries = root.get("deployments")
    if not isinstance(entries, list) or not entries:
        raise FieldError("deployments", "required, a non-empty list")
    deployments: list[DeploymentScenario] = []
    for index, entry in enumerate(entries):
        path = f"deployments[{index}]"
        deployment = _parse_deployment(entry, path)
        if any(d.name == deployment.name for d in deployments):
            raise FieldError(f"{path}.name", f"duplicate deployment name {deployment.name!r}")
        _check_fits(deployment, inventory, path)
        deployments.append(deployment)
    return Scenario(inventory, tuple(deployments))


def _parse_deployment(raw: Any, path: str) -> DeploymentScenario:
    entry = _mapping(raw, path)
    _reject_unknown(entry, _DEPLOYMENT_KEYS, path)
    fmt = _string(entry, "format", path, default="auto")
    if fmt not in FORMATS:
        raise FieldError(f"{path}.format", f"unknown trace format {fmt!r}; choose one of {', '.join(FORMATS)}")
    trace = TraceSource(
        path=_string(entry, "trace", path),
        format=fmt,
        select=str(entry["select"]) if entry.get("select") is not None else None,
        jitter=_duration(entry, "jitter", path, default=0.0),
        offset=_duration(entry, "offset", path, default=0.0),
        time_scale=_positive(entry, "timeScale", path, default=1.0),
    )
    minimum = _integer(entry, "min", path, low=0, default=0)
    cold_start = _duration(entry, "coldStart", path) if "coldStart" in entry else None
    return DeploymentScenario(
        name=_string(entry, "name", path),
        trace=trace,
        config=_autoscaler_config(entry, path, minimum),
        instance_type=_string(entry, "instanceType", path),
        gpu_count=_integer(entry, "gpuCount", path, low=1, default=1),
        capacity_classes=_capacity_classes(entry, path),
        zones=tuple(_string_list(entry, "zones", path)),
        cold_start=cold_start,
    )


def _autoscaler_config(entry: Mapping[str, Any], path: str, minimum: int) -> AutoscalerConfig:
    maximum = _integer(entry, "max", path, low=1, default=max(DEFAULT_MAX_REPLICAS, minimum))
    priority = _integer(entry, "priority", path, low=0, high=1000, default=0)
    concurrency = _integer(entry, "concurrency", path, low=1, default=DEFAULT_CONCURRENCY)
    profile = _string(entry, "profile", path, default=DEFAULT_PROFILE)
    if profile not in profile_names():
        raise FieldError(f"{path}.profile", f"unknown profile {profile!r}; choose one of {', '.join(profile_names())}")
    tuning = _mapping(entry.get("autoscaling", {}), f"{path}.autoscaling")
    _reject_unknown(tuning, {*OVERRIDE_NAMES, *option_fields()}, f"{path}.autoscaling")
    # Durations may carry a unit (`60s`); every other override is a plain number.
    overrides: dict[str, float | int | None] = {key: _duration(tuning, key, f"{path}.autoscaling") for key in tuning}
    # A replay starts with nothing running: the first request wakes the deployment (as `tide sim`).
    if minimum == 0 and "initialScale" not in overrides:
        overrides["initialScale"] = 0
    try:
        return resolve_config(
            profile, overrides, min_replicas=minimum, max_replicas=maximum, concurrency=concurrency, priority=priority
        )
    except FieldError as exc:
        key = exc.field.removeprefix("autoscaling.")
        field = key if key in _FLAT_AUTOSCALING else exc.field
        raise FieldError(field, exc.message, exc.code).under(path) from None


def _check_fits(deployment: DeploymentScenario, inventory: Inventory, path: str) -> None:
    """One replica must fit the empty inventory, or the deployment's requests could never be served."""
    alone = schedule(inventory, [], [deployment.request(1, 0)], 0.0)
    if alone.pending:
        message = alone.pending[0].message.removesuffix("; 1 pending")
        raise FieldError(f"{path}.instanceType", f"no replica can ever be placed: {message}")


def _capacity_classes(entry: Mapping[str, Any], path: str) -> tuple[str, ...]:
    if "capacityClasses" not in entry:
        return CAPACITY_CLASSES
    names = _string_list(entry, "capacityClasses", path)
    if not names:
        raise FieldError(f"{path}.capacityClasses", "must name at least one class")
    try:
        return tuple(parse_capacity_class(name) for name in names)
    except ValueError as exc:
        raise FieldError(f"{path}.capacityClasses", str(exc)) from None


# -- field readers ------------------------------------------------------------------------------------
def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    return require_mapping(value, path)


def _reject_unknown(entry: Mapping[str, Any], allowed: set[str], path: str) -> None:
    reject_unknown_keys(entry, allowed, path)


def _string(entry: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    if key not in entry and default is not None:
        return default
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FieldError(f"{path}.{key}", "required, a non-empty string")
    return value.strip()


def _string_list(entry: Mapping[str, Any], key: str, path: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FieldError(f"{path}.{key}", "must be a list of non-empty strings")
    return [v.strip() for v in value]


def _integer(entry: Mapping[str, Any], key: str, path: str, *, low: int, default: int, high: int | None = None) -> int:
    value = entry.get(key, default)
    # bool is an int subclass; `min: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"{path}.{key}", f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"within {low}-{high}" if high is not None else f">= {low}"
        raise FieldError(f"{path}.{key}", f"must be {bounds}, got {value}")
    return value


def _positive(entry: Mapping[str, Any], key: str, path: str, default: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise FieldError(f"{path}.{key}", f"must be a number > 0, got {value!r}")
    return float(value)


def _duration(entry: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    """A number of seconds or a string like `15s`, `2m`, `500ms`."""
    if key not in entry and default is not None:
        return default
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldError(f"{path}.{key}", f"must be a duration (e.g. 15s, 2m) or a number, got {value!r}")
    return parse_duration(str(value), f"{path}.{key}")
