"""JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses them) of the deployment and gateway specs, built from the
same constants and tables the validators use (pure).

`parse_deployment` / `parse_gateway` stay the authority: a body they refuse is a 400 naming the field. The
schemas say the same per field (types, ranges, patterns, enums from the catalog), so a client or a generator
can build a valid body without reading the code. Rules JSON Schema cannot state (one field against another,
against the installation, or a range on a duration written as text) are listed in `SERVER_CHECKS` with the
field the 400 names; the OpenAPI document publishes that list (`x-tide-server-checks`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tide.autoscale.config import OptionRange, option_fields, profile_names
from tide.autoscale.fields import REPLICAS_BY_NAME, TUNING, Field
from tide.spec.catalog import (
    BUILTIN_CONFIG_SCHEMA,
    INTEGER_TEXT,
    LINE_BREAKS,
    NOT_BLANK,
    VLLM_CONFIG_SCHEMA,
    Catalog,
    ConfigOption,
)
from tide.spec.deployment import (
    CAPACITY_CLASSES,
    DEFAULT_MAX_QUEUE,
    DEFAULT_PRIORITY,
    DEFAULT_WEIGHT,
    ENDPOINT_PATTERN,
    GPU_COUNTS,
    MAX_REPLICAS,
    MODEL_NAME_PATTERN,
    NAME_PATTERN,
    SECTION_KEYS,
    VERSION_PATTERN,
)
from tide.spec.durations import BLANKS
from tide.spec.gateway import API_TYPES, AUTH_TYPES, GATEWAY_KEYS, HEADER_PATTERN, HOST_PATTERN, ROUTING_STRATEGIES
from tide.spec.routing import ROUTING_POLICIES

Schema = dict[str, Any]


def _text_range(field: Field) -> str:
    bounds = f"{field.low:g}-{field.high:g} s" if field.high is not None else f">= {field.low:g} s"
    return f"written as text, within {bounds}{', whole seconds' if field.whole else ''}"


# Rules the validators apply that no JSON Schema keyword expresses: field (as the 400's `error.field`
# names it, without list indexes) -> the rule. A body valid by the schema can still get a 400 for these.
SERVER_CHECKS: dict[str, str] = {
    "autoscaling.max": "must be >= autoscaling.min",
    "autoscaling.maxConcurrency": "must be >= autoscaling.concurrency",
    "autoscaling.initialScale": "must be <= autoscaling.max, and 0 only with autoscaling.min 0",
    "autoscaling.activationScale": "must be <= autoscaling.max",
    "resources.gpuCount": "at most the GPUs of resources.instanceType",
    "runtime.version": "not newer than the newest version installed (GET /deployments/parameters)",
    "gatewayIds": "each must name an existing gateway (GET /gateways), and their zones must overlap",
    "id": "in a PATCH body, the resource's own id (an id cannot be changed)",
    "gatewayId": "API keys only for a gateway with apiKeyAuth",
    "zones": "a gateway's zones must leave each deployment on it a zone its other gateways also allow",
    "model.name": "in a PATCH body, the deployment's model name (a rename is a new deployment)",
    "Idempotency-Key": "a key already used with another body: 422 (IETF Idempotency-Key header draft)",
    **{f"autoscaling.{f.name}": _text_range(f) for f in TUNING if f.kind == "duration"},
    **{f"autoscaling.{name}": "only with the autoscaling.profile that defines it" for name in option_fields()},
    **{f"runtime.engineConfig.{o.key}": f"written as text, within {o.minimum}-{o.maximum}"
       for o in (*BUILTIN_CONFIG_SCHEMA, *VLLM_CONFIG_SCHEMA) if o.kind == "integer"},
    "resources.instanceId": "offered in one of resources.zones (a capacity claim)",
    "pageToken": "a nextPageToken this API issued",
    "start": "epoch seconds, or an ISO-8601 time Python's datetime reads",
    "end": "the same, and not before start",
}  # fmt: skip


def _text(pattern: str, **extra: Any) -> Schema:
    """A string matching `pattern` whole: the validators use `fullmatch`, and a Python `$` also matches
    before a final newline, so the newline is ruled out explicitly."""
    return {"type": "string", "pattern": pattern, "not": {"type": "string", "pattern": "\n"}, **extra}


NAME: Schema = {
    **_text(NAME_PATTERN.pattern),
    "minLength": 4,
    "maxLength": 63,
    "description": "lowercase letters, digits and '-', 4-63 characters",
}
MODEL_NAME: Schema = {
    **_text(MODEL_NAME_PATTERN.pattern),
    "minLength": 4,
    "maxLength": 63,
    "description": "the model name clients send (body `model`, a header, or the first path segment); no '/'",
}
# tide.spec.names: S3's bucket rules (the extra ones: no '..', no IP address, reserved prefix/suffix).
BUCKET: Schema = _text(
    r"^(?!xn--)(?!.*\.\.)(?![0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
)
OBJECT_PATH: Schema = {
    "type": "string",
    "description": "a directory inside the bucket: no '.' or '..' segments, no backslash or NUL",
    "pattern": r"^/*(?!\.\.?(/|$))(?![\s\S]*/\.\.?(/|$))[^\\\x00]*[^/\\\x00][^\\\x00]*$",
}
# tide.spec.durations: "60s", "15m", "1h30m", "500ms", "90d"; or a number of seconds.
_BLANK = "[" + BLANKS.encode("unicode_escape").decode() + "]*"
DURATION_TEXT = rf"^{_BLANK}([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+{_BLANK}$"
NON_EMPTY_STRINGS: Schema = {"type": "array", "items": {"type": "string", "minLength": 1}}


def or_empty(schema: Schema, doc: str = "left out") -> Schema:
    """`schema`, or "" which the validator reads as `doc` (it tests these fields for truth, not presence)."""
    return {"anyOf": [schema, {"const": "", "description": doc}]}


def duration(low: float | None = 0, high: float | None = None, *, whole: bool = False, doc: str = "") -> Schema:
    number: Schema = {"type": "integer" if whole else "number", "minimum": 0 if low is None else low}
    if high is not None:
        number["maximum"] = high
    text = {"type": "string", "pattern": DURATION_TEXT, "examples": ["60s", "15m", "1h30m"]}
    return {"anyOf": [number, text], "description": f'{doc} (a duration like "60s", or seconds)'.strip()}


def _integer(low: float | None = None, high: float | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": "integer", **extra}
    if low is not None:
        out["minimum"] = int(low)
    if high is not None:
        out["maximum"] = int(high)
    return out


def field_schema(field: Field) -> Schema:
    """One autoscaling field of tide/autoscale/fields.py."""
    if field.kind == "duration":
        return duration(field.low, field.high, whole=field.whole, doc=field.doc)
    out: Schema = {"type": "integer" if field.whole else "number", "description": field.doc}
    if field.low is not None:
        out["exclusiveMinimum" if not field.low_inclusive else "minimum"] = field.low
    if field.high is not None:
        out["maximum"] = field.high
    return out


def option_schema(name: str, option: OptionRange) -> Schema:
    out: Schema = {"type": "integer" if option.integer else "number", "minimum": option.low, "maximum": option.high}
    out["description"] = f"a field of a registered policy's profile (default {option.default:g})"
    return out


def _engine_option(option: ConfigOption) -> Schema:
    """An engineConfig value (a string in the spec; numbers are accepted for integer options)."""
    if option.kind == "integer":
        low, high = option.minimum, option.maximum
        return {"anyOf": [_integer(low, high), _text(INTEGER_TEXT.pattern)]}
    if option.kind == "enum":
        return {"enum": list(option.choices)}
    if option.kind == "flag":
        return {"enum": ["", "true"]}
    return {"type": "string", "pattern": NOT_BLANK.pattern, "not": {"pattern": LINE_BREAKS.pattern}}


def _any_case(pattern: str) -> str:
    """`pattern` matching letters in either case, without an inline flag (not in ECMA-262 regexes)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in pattern)


def one_of_any_case(values: Iterable[str]) -> Schema:
    """One of `values`, in any letter case (instance types are looked up case-insensitively)."""
    choices = sorted(values)
    if not choices:
        return {"type": "string", "minLength": 1}
    alternatives = "|".join(_any_case(re.escape(v)) for v in choices)
    return _text(f"^({alternatives})$", examples=choices)


def _selectable(catalog: Catalog) -> list[str]:
    """Engines a spec can name and be accepted: an engine with no version installed cannot be."""
    return [name for name, engine in catalog.engines.items() if engine.versions]


def _autoscaling() -> Schema:
    replicas = REPLICAS_BY_NAME
    props: Schema = {
        "min": _integer(replicas["min"].low, MAX_REPLICAS, default=1, description=replicas["min"].doc),
        "max": _integer(replicas["max"].low, MAX_REPLICAS, description=f"{replicas['max'].doc} (default: max(1, min))"),
        "priority": _integer(
            replicas["priority"].low,
            replicas["priority"].high,
            default=DEFAULT_PRIORITY,
            description=replicas["priority"].doc,
        ),
        "concurrency": _integer(replicas["concurrency"].low, description=replicas["concurrency"].doc),
        "capacityClasses": {
            "type": "array",
            "items": {"enum": list(CAPACITY_CLASSES)},
            "minItems": 1,
            "default": list(CAPACITY_CLASSES),
        },
        "profile": {"enum": list(profile_names()), "description": "the autoscaling profile (docs/AUTOSCALING.md)"},
        "maxConcurrency": _integer(1, description="hard per-replica cap on requests in flight"),
        "maxQueue": _integer(0, default=DEFAULT_MAX_QUEUE, description="requests the gateway queues"),
        "maxQueueWait": duration(doc="how long a queued request waits"),
        "parking": _object(
            {
                "enabled": {"type": "boolean", "description": "absent: the profile decides"},
                "retention": duration(doc="how long a parked replica is kept"),
                "level": _integer(1, 2, default=1),
            }
        ),
        **{f.name: field_schema(f) for f in TUNING},
        **{name: option_schema(name, option) for name, option in option_fields().items()},
    }
    return {"type": "object", "additionalProperties": False, "properties": props}


def nullable(schema: Schema) -> Schema:
    """`schema` or null: the validators read an optional field given as null as left out (its default)."""
    if "type" in schema and isinstance(schema["type"], str):
        return {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return schema  # no type stated: null is already allowed


def _object(properties: Schema, required: Iterable[str] = (), *, not_null: Iterable[str] = (), **extra: Any) -> Schema:
    """A closed object (the validators refuse unknown keys); optional properties may be null unless named
    in `not_null` (where the validator refuses a null)."""
    wanted = set(required) | set(not_null)
    properties = {k: v if k in wanted else nullable(v) for k, v in properties.items()}
    out: Schema = {"type": "object", "additionalProperties": False, "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    return out


def deployment_schema(catalog: Catalog) -> Schema:
    """The body of POST/PATCH /deployments on an installation with this catalog."""
    engines = _selectable(catalog)
    needing = [n for n in engines if catalog.engines[n].needs_weights]
    external = [n for n in engines if not catalog.engines[n].manages_replicas]
    instance_types = [t.id for t in catalog.instance_types]
    sections: dict[str, Schema] = {
        "id": {**NAME, "description": "the deployment's id (default: its name, or the name and 4 hex digits)"},
        "name": NAME,
        "gatewayIds": {
            "type": "array",
            "items": {**NAME, "minLength": 1},
            "minItems": 1,
            "default": ["default"],
            "description": "the gateways that serve it",
        },
        "model": _object(
            {"name": MODEL_NAME, "bucket": or_empty(BUCKET), "path": or_empty(OBJECT_PATH)},
            required=["name"],
            description="what is served",
        ),
        "weights": _object(
            {
                "allowPatterns": NON_EMPTY_STRINGS,
                "ignorePatterns": NON_EMPTY_STRINGS,
                "bucket": {**or_empty(BUCKET), "deprecated": True, "description": "the old shape: use model.bucket"},
                "path": {**or_empty(OBJECT_PATH), "deprecated": True, "description": "the old shape: use model.path"},
            },
            description="download filters (Tide's extension)",
        ),
        "runtime": _object(
            {
                "engine": {"enum": engines},
                "version": or_empty(_text(VERSION_PATTERN.pattern), "the newest installed"),
                "engineConfig": {"type": "object", "description": "per engine: GET /deployments/parameters"},
                "endpoints": {"type": "array", "items": _text(ENDPOINT_PATTERN.pattern)},
            },
            required=["engine"],
        ),
        "resources": _object(
            {
                "instanceType": or_empty(one_of_any_case(instance_types), "the first instance type"),
                "gpuCount": {"enum": list(GPU_COUNTS), "default": 1},
            }
        ),
        "autoscaling": _autoscaling(),
        "traffic": _object(
            {"weight": _integer(0, 1000, default=DEFAULT_WEIGHT), "routing": {"enum": list(ROUTING_POLICIES)}}
        ),
        "disabled": {"type": "boolean", "default": False},
        "status": {"description": "ignored (a GET answer's spec can be sent back)"},
        "organizationId": {"description": "ignored (Tide has one organization)"},
    }
    rules: list[Schema] = []
    if not catalog.default_instance_type:
        rules.append({"required": ["resources"], "properties": {"resources": {"required": ["instanceType"]}}})
    for name in engines:
        engine = catalog.engines[name]
        runtime: Schema = {
            "engineConfig": {
                "type": "object",
                "additionalProperties": False,
                "properties": {o.key: _engine_option(o) for o in engine.config_schema},
            }
        }
        runtime["endpoints"] = {"type": "array", "minItems": 1} if not engine.manages_replicas else {"maxItems": 0}
        if engine.strict_versions:
            installed = [*engine.versions, *(f"v{v}" for v in engine.versions)]
            runtime["version"] = {"enum": [*installed, "", None]}  # "" or null: the newest installed
        then: Schema = {"properties": {"runtime": {"properties": runtime}}}
        if not engine.manages_replicas:
            then["properties"]["runtime"]["required"] = ["endpoints"]
        rules.append({"if": _engine_is([name]), "then": then})
    if needing:
        # Weights are in model: {name, bucket, path}; or, in the old shape, weights: {bucket, path}.
        filled: Schema = {"type": "string", "minLength": 1}
        given: Schema = {"type": "object", "properties": {"bucket": filled, "path": filled}}
        weights_where = {
            "anyOf": [
                {"required": ["model"], "properties": {"model": {"required": ["name", "bucket", "path"], **given}}},
                {
                    "not": {"required": ["model"]},
                    "required": ["weights"],
                    "properties": {"weights": {"required": ["bucket", "path"], **given}},
                },
            ]
        }
        rules.append({"if": _engine_is(needing), "then": weights_where})
    if external:
        # Without weights, bucket and path come together or not at all.
        model_rules = [
            {"if": _string_at(one), "then": _string_at(other)}
            for one, other in (("bucket", "path"), ("path", "bucket"))
        ]
        rules.append({"properties": {"model": {"allOf": model_rules}}})
        # The same of the old shape's weights: {bucket, path} (model absent).
        rules.append(
            {"if": {"not": {"required": ["model"]}}, "then": {"properties": {"weights": {"allOf": model_rules}}}}
        )
    rules.append({"if": {"required": ["model"]}, "then": {"properties": {"weights": {"not": {"anyOf": [
        {"required": ["bucket"]}, {"required": ["path"]}]}}}}})  # fmt: skip
    return {**_object(sections, required=["name", "runtime"], not_null=["model", "disabled"]), "allOf": rules}


def _string_at(key: str) -> Schema:
    return {"required": [key], "properties": {key: {"type": "string", "minLength": 1}}}


def _engine_is(names: list[str]) -> Schema:
    return {
        "required": ["runtime"],
        "properties": {"runtime": {"required": ["engine"], "properties": {"engine": {"enum": names}}}},
    }


def gateway_schema(zones: Iterable[str]) -> Schema:
    """The body of POST/PATCH /gateways, with the zones this installation offers."""
    zone_list = sorted(zones)
    empty: Schema = {"type": "object", "description": "write {} (its contents are not read)"}
    props: Schema = {
        "id": NAME,
        "name": NAME,
        "zones": {"type": "array", "items": {"enum": zone_list} if zone_list else {"type": "string", "minLength": 1}},
        "coreWeaveAuth": {**empty, "description": "the management API's own token opens it"},
        "apiKeyAuth": {**empty, "description": "keys issued per gateway (POST /gateways/{id}/keys)"},
        "bodyBasedRouting": {
            "type": "object",
            "properties": {"apiType": {"enum": list(API_TYPES), "default": API_TYPES[0]}},
            "description": "route by the body's `model`",
        },
        "headerBasedRouting": {
            "type": "object",
            "required": ["headerName"],
            "properties": {
                "headerName": {
                    "allOf": [
                        _text(HEADER_PATTERN.pattern),
                        {"not": {"pattern": _any_case("^(authorization|host|content-length|content-type)$")}},
                    ]
                }
            },
        },
        "pathBasedRouting": {"type": "object", "description": "route by the first path segment: /{model}/v1/..."},
        "endpointConfiguration": _object({"additionalDns": {"type": "array", "items": _text(HOST_PATTERN.pattern)}}),
        "status": {"description": "ignored"},
        "organizationId": {"description": "ignored"},
    }
    one_of = [
        {"oneOf": [_given(key) for key in AUTH_TYPES]},
        {"oneOf": [_given(key) for key in ROUTING_STRATEGIES]},
    ]
    assert set(props) == GATEWAY_KEYS | {"status"}, "every key parse_gateway accepts is documented"
    return {**_object(props, required=["name"]), "allOf": one_of}


def _given(key: str) -> Schema:
    """`key` is set (the validator reads a null as left out)."""
    return {"required": [key], "properties": {key: {"type": "object"}}}


def section_properties(schema: Mapping[str, Any], section: str) -> set[str]:
    """The property names a deployment schema documents for a section of SECTION_KEYS ("" = top level)."""
    node: Mapping[str, Any] = schema
    for part in [p for p in section.split(".") if p]:
        node = node["properties"][part]
    return set(node["properties"])


__all__ = [
    "SECTION_KEYS",
    "SERVER_CHECKS",
    "deployment_schema",
    "gateway_schema",
    "nullable",
    "one_of_any_case",
    "section_properties",
]
