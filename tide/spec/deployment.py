"""The Deployment resource of API.md: its fields, defaults and validation (pure).

`parse_deployment(raw, catalog)` turns a JSON/YAML mapping into a `DeploymentSpec` or raises `FieldError`
naming the first bad field. Omitted fields take their defaults, which is what makes PATCH-with-the-whole-
spec revert omitted fields. `deployment_to_dict` is the inverse, with every default filled in, in the
hosted API's shape (`model: {name, bucket, path}`, `gatewayIds`).

The shape before it (`name` doubling as the model name, `weights: {bucket, path}`) is still read for one
release: `legacy_fields(raw)` names what a request used of it (the API answers with a Deprecation header),
and `parse_deployment` maps it onto the new fields (docs/API-NOTES.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tide.autoscale import AutoscalerConfig, profile_names, resolve_config
from tide.autoscale.config import option_fields
from tide.autoscale.fields import TUNING
from tide.errors import FieldError
from tide.spec.catalog import Catalog
from tide.spec.durations import format_duration, parse_duration
from tide.spec.names import bucket_name_problem, object_path_problem
from tide.spec.routing import LEAST_LOADED, PREFIX_AWARE, ROUTING_POLICIES

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A model name is what clients send (body `model`, a header, or the first path segment), so no '/'.
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._:-]*[A-Za-z0-9])?$")
VERSION_PATTERN = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z.+-]*)?$")
# Blanks and controls spelled out (not \s, which differs between Python's and JSON Schema's regexes).
BLANK_CHARS = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
ENDPOINT_PATTERN = re.compile(rf"^https?://[^/{BLANK_CHARS}]+(/[^{BLANK_CHARS}]*)?$")
DEFAULT_GATEWAY_ID = "default"  # the gateway `tide up` creates; deployments without gatewayIds attach to it
GPU_COUNTS = (1, 2, 4, 8, 16)
CAPACITY_CLASSES = ("CAPACITY_CLASS_RESERVED", "CAPACITY_CLASS_ON_DEMAND")

DEFAULT_CONCURRENCY = 8
DEFAULT_PRIORITY = 0
DEFAULT_WEIGHT = 100
DEFAULT_MAX_QUEUE = 1000
DEFAULT_MAX_QUEUE_WAIT_S = 600.0  # multi-minute GPU cold starts must not time out queued requests

# Autoscaler tuning fields: name -> kind ("duration", "percent", "number", "count"), from tide/autoscale's
# one table (names, kinds, ranges and profile defaults live there; the spec only converts units).
TUNING_FIELDS: dict[str, str] = {f.name: f.kind for f in TUNING}


@dataclass(frozen=True)
class WeightsSpec:
    """Where the weights are: `model.bucket` / `model.path` in the API, plus Tide's download filters
    (`weights.allowPatterns`, `weights.ignorePatterns`, an extension of the hosted shape)."""

    bucket: str
    path: str
    allow_patterns: tuple[str, ...] = ()
    ignore_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeSpec:
    engine: str
    version: str
    engine_config: Mapping[str, str] = field(default_factory=dict)
    endpoints: tuple[str, ...] = ()  # only for the `external` engine


@dataclass(frozen=True)
class ResourcesSpec:
    instance_type: str
    gpu_count: int = 1


# Profiles whose scale-down parks a replica unless `autoscaling.parking.enabled` says otherwise. The hosted
# services the other profiles mirror do not park; `tide` is Tide's own policy's profile (when present).
PARKING_PROFILES = ("development", "tide")
DEFAULT_PARKING_RETENTION_S = 600.0
# Profiles whose policy decides itself how long to keep parked replicas: `retention` is then only the bound.
# The `tide` policy keeps a burst's parked replicas 10 minutes and the last one as long as its learned plan
# says (docs/PARKING.md), which this bound must leave room for.
PROFILE_PARKING_RETENTION_S = {"tide": 7200.0}


def parks_by_default(profile: str | None) -> bool:
    """Whether a deployment of this autoscaling profile parks on scale-down when `parking.enabled` is unset."""
    return profile in PARKING_PROFILES


def default_parking_retention(profile: str | None) -> float:
    """`autoscaling.parking.retention` when unset: the profile's (PROFILE_PARKING_RETENTION_S), else 10 minutes."""
    return PROFILE_PARKING_RETENTION_S.get(profile or "", DEFAULT_PARKING_RETENTION_S)


@dataclass(frozen=True)
class ParkingSpec:
    """`autoscaling.parking` (a Tide extension): a scale-down parks the replica (the process stays, its
    accelerator memory is given back) for up to `retention_s`, and a scale-up wakes it before starting
    a new one. `enabled` None: the profile decides (PARKING_PROFILES); `retention_s` None: the profile's
    default (default_parking_retention; AutoscalingSpec.parking_retention_s is the one that holds)."""

    enabled: bool | None = None
    retention_s: float | None = None
    level: int = 1


@dataclass(frozen=True)
class AutoscalingSpec:
    min: int = 1
    max: int = 1
    priority: int = DEFAULT_PRIORITY
    concurrency: int = DEFAULT_CONCURRENCY
    capacity_classes: tuple[str, ...] = CAPACITY_CLASSES
    profile: str | None = None
    # Tuning overrides keyed by API.md names; durations in seconds. Absent = the profile's default.
    tuning: Mapping[str, float] = field(default_factory=dict)
    # The fields above resolved and validated once, at parse time (None: built by hand, resolved on use).
    resolved: AutoscalerConfig | None = field(default=None, compare=False, repr=False)
    # Gateway bounds (Tide's own fields): hard per-replica cap and the activator queue bounds.
    max_concurrency: int | None = None
    max_queue: int = DEFAULT_MAX_QUEUE
    max_queue_wait_s: float = DEFAULT_MAX_QUEUE_WAIT_S
    parking: ParkingSpec = field(default_factory=ParkingSpec)

    @property
    def parks(self) -> bool:
        """Whether a scale-down parks replicas (the field, else the profile's default)."""
        if self.parking.enabled is not None:
            return self.parking.enabled
        return parks_by_default(self.profile)

    @property
    def parking_retention_s(self) -> float:
        """How long a parked replica may stay parked (the field, else the profile's default)."""
        if self.parking.retention_s is not None:
            return self.parking.retention_s
        return default_parking_retention(self.profile)


@dataclass(frozen=True)
class TrafficSpec:
    weight: int = DEFAULT_WEIGHT
    routing: str = LEAST_LOADED  # parsing fills in the engine's default (default_routing)


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    weights: WeightsSpec | None
    runtime: RuntimeSpec
    resources: ResourcesSpec
    autoscaling: AutoscalingSpec = field(default_factory=AutoscalingSpec)
    traffic: TrafficSpec = field(default_factory=TrafficSpec)
    disabled: bool = False
    model_name: str = ""  # `model.name`: what clients route by; empty = the deployment's name
    gateway_ids: tuple[str, ...] = (DEFAULT_GATEWAY_ID,)

    @property
    def routing_name(self) -> str:
        """The model name clients send and the engine serves under."""
        return self.model_name or self.name

    def replica_template(self) -> tuple[object, ...]:
        """What a running replica is built from: a change here needs new replicas (a rolling update)."""
        return (
            self.routing_name,
            self.weights,
            self.runtime.engine,
            self.runtime.version,
            tuple(sorted(self.runtime.engine_config.items())),
            self.runtime.endpoints,
            self.resources,
        )

    def with_disabled(self, disabled: bool) -> DeploymentSpec:
        return replace(self, disabled=disabled)

    def autoscaler_config(self) -> AutoscalerConfig:
        a = self.autoscaling
        if a.resolved is not None:
            return a.resolved
        return resolve_config(
            a.profile,
            a.tuning,
            min_replicas=a.min,
            max_replicas=a.max,
            concurrency=a.concurrency,
            priority=a.priority,
        )


# ---------------------------------------------------------------------------------------------------
# Parsing


def _section(raw: Mapping[str, Any], key: str, required: bool = False) -> Mapping[str, Any]:
    value = raw.get(key)
    if value is None:
        if required:
            raise FieldError(key, "required")
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(key, "must be an object")
    _reject_unknown(value, key)
    return value


# The keys each section of a deployment accepts ("" = the top level); tide.spec.schema documents each.
SECTION_KEYS: dict[str, set[str]] = {
    "": {
        "id",
        "name",
        "gatewayIds",
        "model",
        "weights",
        "runtime",
        "resources",
        "autoscaling",
        "traffic",
        "disabled",
        "status",
        "organizationId",  # the hosted API echoes it in spec; Tide has one organization and ignores it
    },
    "model": {"name", "bucket", "path"},
    "weights": {"bucket", "path", "allowPatterns", "ignorePatterns"},  # bucket, path: the old shape
    "runtime": {"engine", "version", "engineConfig", "endpoints"},
    "resources": {"instanceType", "gpuCount"},
    "autoscaling": {
        "min",
        "max",
        "priority",
        "concurrency",
        "capacityClasses",
        "profile",
        "maxConcurrency",
        "maxQueue",
        "maxQueueWait",
        "parking",
        *TUNING_FIELDS,
    },
    "autoscaling.parking": {"enabled", "retention", "level"},
    "traffic": {"weight", "routing"},
}


def _reject_unknown(raw: Mapping[str, Any], section: str) -> None:
    known = SECTION_KEYS[section]
    if section == "autoscaling":
        known = known | set(option_fields())  # registered policies' own fields
    for key in raw:
        if key not in known:
            path = f"{section}.{key}" if section else str(key)
            allowed = ", ".join(sorted(known - {"status", "id", "organizationId"}))
            raise FieldError(path, f"unknown field; allowed here: {allowed}")


def _int(value: Any, field_name: str, *, default: int, low: int | None = None, high: int | None = None) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldError(field_name, f"must be an integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise FieldError(field_name, f"must be an integer, not {value!r}") from None
    if isinstance(value, float) and value != number:
        raise FieldError(field_name, f"must be a whole number, not {value!r}")
    if low is not None and high is not None and not low <= number <= high:
        raise FieldError(field_name, f"must be between {low} and {high}, not {number}")
    if low is not None and number < low:
        raise FieldError(field_name, f"must be >= {low}, not {number}")
    return number


def _string(value: Any, field_name: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise FieldError(field_name, "required")
        return ""
    if not isinstance(value, str):
        raise FieldError(field_name, f"must be a string, not {value!r}")
    return value


def _string_list(value: Any, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FieldError(field_name, "must be a list of non-empty strings")
    return tuple(value)


def parse_name(value: Any, field_name: str = "name") -> str:
    name = _string(value, field_name)
    if not 4 <= len(name) <= 63:
        raise FieldError(field_name, f"must be 4-63 characters long, not {len(name)} ({name!r})")
    if not NAME_PATTERN.fullmatch(name):
        raise FieldError(
            field_name,
            f"{name!r} must be lowercase letters, digits and '-', starting and ending with a letter or digit",
        )
    return name


# A deployment's replica bound at the API (the autoscaler itself, as the simulator drives it, has none): a
# typo like 10000 is refused, not queued for capacity forever.
MAX_REPLICAS = 1000


def parse_model_name(value: Any, field_name: str = "model.name") -> str:
    name = _string(value, field_name)
    if not 4 <= len(name) <= 63:
        raise FieldError(field_name, f"must be 4-63 characters long, not {len(name)} ({name!r})")
    if not MODEL_NAME_PATTERN.fullmatch(name):
        raise FieldError(
            field_name,
            f"{name!r} may hold letters, digits, '.', '_', ':' and '-' (no '/': path-based routing "
            "takes it from the first path segment), starting and ending with a letter or digit",
        )
    return name


def legacy_fields(raw: Any) -> list[str]:
    """The fields of the pre-hosted shape that `raw` uses (empty when it is in the current shape)."""
    if not isinstance(raw, Mapping) or "model" in raw:
        return []
    weights = raw.get("weights")
    used = [f"weights.{key}" for key in ("bucket", "path") if isinstance(weights, Mapping) and key in weights]
    return used or ["name (as the model name)"]


def _check_path(path: str, field_name: str) -> str:
    path = path.strip("/")
    if not path:
        raise FieldError(field_name, "must name a directory inside the bucket")
    problem = object_path_problem(path)
    if problem is not None:
        raise FieldError(field_name, problem)
    return path


def _check_bucket(value: Any, field_name: str) -> str:
    bucket = _string(value, field_name)
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise FieldError(field_name, problem)
    return bucket


def _parse_model(raw: Mapping[str, Any], name: str, needs_weights: bool) -> tuple[str, WeightsSpec | None]:
    """`model: {name, bucket, path}` plus the `weights` filters; or the old `name` + `weights` shape."""
    filters = _section(raw, "weights")
    allow = _string_list(filters.get("allowPatterns"), "weights.allowPatterns")
    ignore = _string_list(filters.get("ignorePatterns"), "weights.ignorePatterns")
    if "model" not in raw:  # the old shape: the deployment's name is the model name
        if not filters.get("bucket") and not filters.get("path"):
            if needs_weights:
                raise FieldError("model", "required, an object {name, bucket, path}")
            return name, None
        bucket = _check_bucket(filters.get("bucket"), "weights.bucket")
        path = _check_path(_string(filters.get("path"), "weights.path"), "weights.path")
        return name, WeightsSpec(bucket=bucket, path=path, allow_patterns=allow, ignore_patterns=ignore)
    for key in ("bucket", "path"):
        if key in filters:
            raise FieldError(
                f"weights.{key}",
                f"has moved to model.{key}; give it there only (model: {{name, bucket, path}})",
            )
    model = _section(raw, "model", required=True)
    model_name = parse_model_name(model.get("name"))
    if not needs_weights and not model.get("bucket") and not model.get("path"):
        return model_name, None
    bucket = _check_bucket(model.get("bucket"), "model.bucket")
    path = _check_path(_string(model.get("path"), "model.path"), "model.path")
    return model_name, WeightsSpec(bucket=bucket, path=path, allow_patterns=allow, ignore_patterns=ignore)


def _parse_gateway_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return (DEFAULT_GATEWAY_ID,)
    ids = _string_list(value, "gatewayIds")
    if not ids:
        raise FieldError("gatewayIds", "must name at least one gateway (omit it for the default gateway)")
    for i, gateway_id in enumerate(ids):
        if not NAME_PATTERN.fullmatch(gateway_id) or len(gateway_id) > 63:
            raise FieldError(f"gatewayIds[{i}]", f"{gateway_id!r} is not a gateway id")
    return tuple(dict.fromkeys(ids))


def _release(version: str) -> tuple[int, int, int]:
    major, minor, patch = re.findall(r"[0-9]+", version)[:3]
    return int(major), int(minor), int(patch)


def _newer(version: str, newest: str) -> bool:
    """True when `version` is a later release than `newest` (pre-release and build suffixes ignored)."""
    try:
        return _release(version) > _release(newest)
    except ValueError:  # a version string without three numbers: nothing to compare
        return False


def _parse_runtime(raw: Mapping[str, Any], catalog: Catalog) -> RuntimeSpec:
    section = _section(raw, "runtime", required=True)
    engine_name = _string(section.get("engine"), "runtime.engine")
    engine = catalog.engine(engine_name)
    if engine is None:
        raise FieldError(
            "runtime.engine",
            f"{engine_name!r} is not known; choose one of {sorted(catalog.engines)}",
        )
    version = _string(section.get("version"), "runtime.version", required=False)
    if not version:
        if not engine.versions:
            raise FieldError(
                "runtime.version",
                f"no version of engine {engine_name!r} is installed on this node; "
                f"{engine.install_hint or 'install it'}, or choose another engine "
                "(see GET /v1alpha1/inference/deployments/parameters)",
            )
        version = engine.versions[0]
    elif not VERSION_PATTERN.fullmatch(version):
        raise FieldError("runtime.version", f"must be a SemVer like 0.11.2, not {version!r}")
    elif not engine.strict_versions and engine.versions and _newer(version, engine.versions[0]):
        raise FieldError(
            "runtime.version",
            f"{version!r} of engine {engine_name!r} is newer than this node has "
            f"({engine.versions[0]}); leave it out for the newest, or name {engine.versions[0]} or older",
        )
    elif engine.strict_versions and version.removeprefix("v") not in engine.versions:
        installed = ", ".join(engine.versions) or f"none ({engine.install_hint or 'install it'})"
        raise FieldError(
            "runtime.version",
            f"{version!r} of engine {engine_name!r} is not installed on this node; installed: {installed}",
        )
    config_raw = section.get("engineConfig")
    config_raw = {} if config_raw is None else config_raw  # null is absent; false, [] or "" are refused
    if not isinstance(config_raw, Mapping):
        raise FieldError("runtime.engineConfig", "must be a map of strings to strings")
    engine_config: dict[str, str] = {}
    for key, value in config_raw.items():
        path = f"runtime.engineConfig.{key}"
        if key not in engine.config_keys:
            allowed = ", ".join(engine.config_keys) or "none"
            raise FieldError(
                path, f"engineConfig key {key!r} is not allowed for engine {engine_name}; allowed: {allowed}"
            )
        if isinstance(value, bool) or value is None or not isinstance(value, str | int | float):
            raise FieldError(path, "must be a string")
        text = str(value)
        option = engine.config_option(key)
        problem = option.problem(text) if option is not None else None
        if problem is not None:
            raise FieldError(path, f"{problem} (see GET /v1alpha1/inference/deployments/parameters)")
        engine_config[key] = text.strip() if option is not None and option.kind == "integer" else text
    endpoints = _string_list(section.get("endpoints"), "runtime.endpoints")
    if engine.manages_replicas and endpoints:
        raise FieldError("runtime.endpoints", "allowed only for the external engine")
    if not engine.manages_replicas:
        if not endpoints:
            raise FieldError(
                "runtime.endpoints",
                "required for the external engine: a list of OpenAI base URLs",
            )
        for i, url in enumerate(endpoints):
            if not ENDPOINT_PATTERN.fullmatch(url):
                raise FieldError(f"runtime.endpoints[{i}]", f"must be an http(s) URL, not {url!r}")
        endpoints = tuple(url.rstrip("/") for url in endpoints)
    return RuntimeSpec(engine=engine_name, version=version, engine_config=engine_config, endpoints=endpoints)


def _parse_resources(raw: Mapping[str, Any], catalog: Catalog) -> ResourcesSpec:
    section = _section(raw, "resources")
    instance_type = _string(section.get("instanceType"), "resources.instanceType", required=False)
    if not instance_type:
        default = catalog.default_instance_type
        if default is None:
            raise FieldError("resources.instanceType", "required")
        instance_type = default
    info = catalog.instance_type(instance_type)
    if info is None:
        known = ", ".join(t.id for t in catalog.instance_types) or "none"
        raise FieldError(
            "resources.instanceType",
            f"{instance_type!r} is not known here; choose one of: {known}",
        )
    gpu_count = _int(section.get("gpuCount"), "resources.gpuCount", default=1)
    if gpu_count not in GPU_COUNTS:
        raise FieldError("resources.gpuCount", f"must be one of 1, 2, 4, 8, 16, not {gpu_count}")
    if gpu_count > info.gpus:
        raise FieldError(
            "resources.gpuCount",
            f"{gpu_count} exceeds the {info.gpus} GPUs of instance type {info.id}",
        )
    return ResourcesSpec(instance_type=info.id, gpu_count=gpu_count)


def _parse_tuning(section: Mapping[str, Any]) -> dict[str, float]:
    tuning: dict[str, float] = {}
    """Units only (durations like `90s`, numbers); ranges are checked once, by resolve_config."""
    kinds = {**TUNING_FIELDS, **dict.fromkeys(option_fields(), "number")}
    for key, kind in kinds.items():
        value = section.get(key)
        if value is None:
            continue
        path = f"autoscaling.{key}"
        if kind == "duration":
            tuning[key] = parse_duration(value, path)
        elif kind == "count":
            tuning[key] = float(_int(value, path, default=0))
        else:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise FieldError(path, f"must be a number, not {value!r}")
            try:
                tuning[key] = float(value)
            except ValueError:
                raise FieldError(path, f"must be a number, not {value!r}") from None
    return tuning


def _parse_autoscaling(raw: Mapping[str, Any]) -> AutoscalingSpec:
    section = _section(raw, "autoscaling")
    # Types here; ranges once, in resolve_config (tide/autoscale/fields.py).
    minimum = _int(section.get("min"), "autoscaling.min", default=1, low=0, high=MAX_REPLICAS)
    # API.md: max defaults to 1; with a larger min and no max, max follows min rather than failing.
    maximum = _int(section.get("max"), "autoscaling.max", default=max(1, minimum), low=1, high=MAX_REPLICAS)
    priority = _int(section.get("priority"), "autoscaling.priority", default=DEFAULT_PRIORITY)
    concurrency = _int(section.get("concurrency"), "autoscaling.concurrency", default=DEFAULT_CONCURRENCY)
    classes_raw = section.get("capacityClasses")
    if classes_raw is None:
        classes: tuple[str, ...] = CAPACITY_CLASSES
    else:
        classes = _string_list(classes_raw, "autoscaling.capacityClasses")
        for cls in classes:
            if cls not in CAPACITY_CLASSES:
                raise FieldError(
                    "autoscaling.capacityClasses",
                    f"may hold {', '.join(CAPACITY_CLASSES)}, not {cls!r}",
                )
        if not classes:
            raise FieldError("autoscaling.capacityClasses", "must name at least one class")
        classes = tuple(c for c in CAPACITY_CLASSES if c in classes)
    profile = section.get("profile")
    if profile is not None and profile not in profile_names():
        raise FieldError(
            "autoscaling.profile",
            f"must be one of {', '.join(profile_names())}, not {profile!r}",
        )
    tuning = _parse_tuning(section)
    # Every autoscaling range (min/max, window 6s-1h, thresholds ...), named by field, checked once.
    resolved = resolve_config(
        profile, tuning, min_replicas=minimum, max_replicas=maximum, concurrency=concurrency, priority=priority
    )
    max_concurrency = section.get("maxConcurrency")
    hard_cap = (
        None if max_concurrency is None else _int(max_concurrency, "autoscaling.maxConcurrency", default=1, low=1)
    )
    if hard_cap is not None and hard_cap < concurrency:
        raise FieldError(
            "autoscaling.maxConcurrency",
            f"must be >= autoscaling.concurrency ({concurrency}), not {hard_cap}",
        )
    max_queue = _int(section.get("maxQueue"), "autoscaling.maxQueue", default=DEFAULT_MAX_QUEUE, low=0)
    wait_raw = section.get("maxQueueWait")
    max_wait = DEFAULT_MAX_QUEUE_WAIT_S if wait_raw is None else parse_duration(wait_raw, "autoscaling.maxQueueWait")
    return AutoscalingSpec(
        parking=_parse_parking(section.get("parking")),
        min=minimum,
        max=maximum,
        priority=priority,
        concurrency=concurrency,
        capacity_classes=classes,
        profile=profile,
        tuning=tuning,
        resolved=resolved,
        max_concurrency=hard_cap,
        max_queue=max_queue,
        max_queue_wait_s=max_wait,
    )


def _parse_parking(raw: Any) -> ParkingSpec:
    if raw is None:
        return ParkingSpec()
    if not isinstance(raw, Mapping):
        raise FieldError("autoscaling.parking", "must be an object: {enabled, retention, level}")
    _reject_unknown(raw, "autoscaling.parking")
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise FieldError("autoscaling.parking.enabled", f"must be true or false, not {enabled!r}")
    retention_raw = raw.get("retention")
    retention = None if retention_raw is None else parse_duration(retention_raw, "autoscaling.parking.retention")
    level = _int(raw.get("level"), "autoscaling.parking.level", default=1, low=1, high=2)
    return ParkingSpec(enabled=enabled, retention_s=retention, level=level)


def parse_deployment(raw: Any, catalog: Catalog) -> DeploymentSpec:
    """Validate a deployment spec; raises FieldError naming the first bad field."""
    if not isinstance(raw, Mapping):
        raise FieldError("", "a deployment spec must be a JSON object")
    _reject_unknown(raw, "")
    name = parse_name(raw.get("name"))
    gateway_ids = _parse_gateway_ids(raw.get("gatewayIds"))
    runtime = _parse_runtime(raw, catalog)
    engine = catalog.engines[runtime.engine]
    model_name, weights = _parse_model(raw, name, engine.needs_weights)
    resources = _parse_resources(raw, catalog)
    autoscaling = _parse_autoscaling(raw)
    traffic_section = _section(raw, "traffic")
    weight = _int(traffic_section.get("weight"), "traffic.weight", default=DEFAULT_WEIGHT, low=0, high=1000)
    routing = traffic_section.get("routing")
    if routing is not None and routing not in ROUTING_POLICIES:
        raise FieldError("traffic.routing", f"must be one of {', '.join(ROUTING_POLICIES)}, not {routing!r}")
    routing = routing or default_routing(runtime.engine)
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        raise FieldError("disabled", f"must be true or false, not {disabled!r}")
    return DeploymentSpec(
        name=name,
        weights=weights,
        runtime=runtime,
        resources=resources,
        autoscaling=autoscaling,
        traffic=TrafficSpec(weight=weight, routing=routing),
        disabled=disabled,
        model_name=model_name,
        gateway_ids=gateway_ids,
    )


def deployment_to_dict(spec: DeploymentSpec) -> dict[str, Any]:
    """The spec as API JSON, every default filled in (what GET returns)."""
    a = spec.autoscaling
    autoscaling: dict[str, Any] = {
        "min": a.min,
        "max": a.max,
        "priority": a.priority,
        "concurrency": a.concurrency,
        "capacityClasses": list(a.capacity_classes),
        "maxQueue": a.max_queue,
        "maxQueueWait": format_duration(a.max_queue_wait_s),
    }
    if a.profile is not None:
        autoscaling["profile"] = a.profile
    if a.max_concurrency is not None:
        autoscaling["maxConcurrency"] = a.max_concurrency
    parking: dict[str, Any] = {"level": a.parking.level}
    if a.parking.enabled is not None:  # absent: the profile decides (status.parking says what holds)
        parking["enabled"] = a.parking.enabled
    if a.parking.retention_s is not None:  # absent: the profile's default (default_parking_retention)
        parking["retention"] = format_duration(a.parking.retention_s)
    autoscaling["parking"] = parking
    for key, value in a.tuning.items():
        kind = TUNING_FIELDS.get(key, "number")
        autoscaling[key] = format_duration(value) if kind == "duration" else (int(value) if kind == "count" else value)
    out: dict[str, Any] = {"name": spec.name, "gatewayIds": list(spec.gateway_ids)}
    model: dict[str, Any] = {"name": spec.routing_name}
    if spec.weights is not None:
        model.update(bucket=spec.weights.bucket, path=spec.weights.path)
    out["model"] = model
    if spec.weights is not None and (spec.weights.allow_patterns or spec.weights.ignore_patterns):
        weights: dict[str, Any] = {}
        if spec.weights.allow_patterns:
            weights["allowPatterns"] = list(spec.weights.allow_patterns)
        if spec.weights.ignore_patterns:
            weights["ignorePatterns"] = list(spec.weights.ignore_patterns)
        out["weights"] = weights
    runtime: dict[str, Any] = {
        "engine": spec.runtime.engine,
        "version": spec.runtime.version,
        "engineConfig": dict(spec.runtime.engine_config),
    }
    if spec.runtime.endpoints:
        runtime["endpoints"] = list(spec.runtime.endpoints)
    out["runtime"] = runtime
    out["resources"] = {"instanceType": spec.resources.instance_type, "gpuCount": spec.resources.gpu_count}
    out["autoscaling"] = autoscaling
    out["traffic"] = {"weight": spec.traffic.weight, "routing": spec.traffic.routing}
    out["disabled"] = spec.disabled
    return out


def default_routing(engine: str) -> str:
    """prefix-aware for vLLM (its prefix cache is on by default, so a prefix sent back to the replica
    that computed it skips its prefill), least-loaded for the others."""
    return PREFIX_AWARE if engine == "vllm" else LEAST_LOADED
