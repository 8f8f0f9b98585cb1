"""The Gateway resource of API.md: the entry point clients call (pure).

Spec: `name`, `zones`, exactly one authentication type (`coreWeaveAuth: {}` = the management API's own
tokens; `apiKeyAuth: {}` = keys issued per gateway), exactly one routing strategy (`bodyBasedRouting:
{apiType: API_TYPE_OPENAI}`, `headerBasedRouting: {headerName}`, `pathBasedRouting: {}`), and
`endpointConfiguration.additionalDns` (more host names it answers to). `parse_gateway` raises `FieldError`
naming the first bad field; `gateway_to_dict` is its inverse with the defaults filled in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tide.errors import FieldError
from tide.spec.deployment import DEFAULT_GATEWAY_ID, parse_name

AUTH_TYPES = ("coreWeaveAuth", "apiKeyAuth")
ROUTING_STRATEGIES = ("bodyBasedRouting", "headerBasedRouting", "pathBasedRouting")
API_TYPES = ("API_TYPE_OPENAI",)
UNSUPPORTED_AUTH = {"weightsAndBiasesAuth": "Tide has no W&B integration; use apiKeyAuth (keys with rate limits)"}
# An HTTP header name (RFC 9110 token) and a DNS host name.
HEADER_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HOST_PATTERN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
GATEWAY_KEYS = {"id", "name", "zones", "endpointConfiguration", "organizationId", *AUTH_TYPES, *ROUTING_STRATEGIES}


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    zones: tuple[str, ...] = ()  # empty: every zone
    auth: str = "coreWeaveAuth"
    routing: str = "bodyBasedRouting"
    header_name: str = ""  # headerBasedRouting only
    additional_dns: tuple[str, ...] = ()


def default_gateway() -> GatewaySpec:
    """The gateway `tide up` creates: the management token opens it, the body's `model` routes."""
    return GatewaySpec(name=DEFAULT_GATEWAY_ID)


def _one_of(raw: Mapping[str, Any], options: tuple[str, ...], what: str) -> str:
    given = [key for key in options if raw.get(key) is not None]
    if len(given) > 1:
        raise FieldError(given[1], f"exactly one {what} may be set, not {' and '.join(given)}")
    if not given:
        raise FieldError(options[0], f"one {what} is required: {', '.join(options)}")
    value = raw[given[0]]
    if not isinstance(value, Mapping):
        raise FieldError(given[0], "must be an object")
    return given[0]


def _strings(value: Any, field_name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise FieldError(field_name, "must be a list of non-empty strings")
    return tuple(dict.fromkeys(value))


def parse_gateway(raw: Any, known_zones: Iterable[str] | None = None) -> GatewaySpec:
    """Validate a gateway spec; `known_zones` (when given) are the zones it may name."""
    if not isinstance(raw, Mapping):
        raise FieldError("", "a gateway spec must be a JSON object")
    for key in raw:
        if key in UNSUPPORTED_AUTH:
            raise FieldError(key, f"not supported: {UNSUPPORTED_AUTH[key]}")
        if key not in GATEWAY_KEYS and key != "status":
            allowed = ", ".join(sorted(GATEWAY_KEYS - {"id", "organizationId"}))
            raise FieldError(str(key), f"unknown field; allowed here: {allowed}")
    name = parse_name(raw.get("name"))
    zones = _strings(raw.get("zones"), "zones")
    if known_zones is not None:
        known = set(known_zones)
        for i, zone in enumerate(zones):
            if zone not in known:
                raise FieldError(f"zones[{i}]", f"zone {zone!r} is not offered here; zones: {', '.join(sorted(known))}")
    auth = _one_of(raw, AUTH_TYPES, "authentication type")
    routing = _one_of(raw, ROUTING_STRATEGIES, "routing strategy")
    header_name = ""
    section = raw[routing]
    if routing == "bodyBasedRouting":
        api_type = section.get("apiType", "API_TYPE_OPENAI")
        if api_type not in API_TYPES:
            raise FieldError("bodyBasedRouting.apiType", f"must be API_TYPE_OPENAI, not {api_type!r}")
    elif routing == "headerBasedRouting":
        header_name = section.get("headerName") or ""
        if not isinstance(header_name, str) or not HEADER_PATTERN.fullmatch(header_name):
            raise FieldError("headerBasedRouting.headerName", "must be an HTTP header name")
        if header_name.lower() in ("authorization", "host", "content-length", "content-type"):
            raise FieldError("headerBasedRouting.headerName", f"{header_name!r} is reserved by HTTP")
        header_name = header_name.lower()
    endpoint = raw.get("endpointConfiguration")
    endpoint = {} if endpoint is None else endpoint  # null is absent; false, [] or "" are refused
    if not isinstance(endpoint, Mapping) or set(endpoint) - {"additionalDns"}:
        raise FieldError("endpointConfiguration", "may hold additionalDns (a list of host names)")
    dns = _strings(endpoint.get("additionalDns"), "endpointConfiguration.additionalDns")
    for i, host in enumerate(dns):
        if not HOST_PATTERN.fullmatch(host):
            raise FieldError(f"endpointConfiguration.additionalDns[{i}]", f"{host!r} is not a DNS host name")
    return GatewaySpec(
        name=name,
        zones=zones,
        auth=auth,
        routing=routing,
        header_name=header_name,
        additional_dns=tuple(h.lower() for h in dns),
    )


def gateway_to_dict(spec: GatewaySpec) -> dict[str, Any]:
    routing: dict[str, Any] = {}
    if spec.routing == "bodyBasedRouting":
        routing = {"apiType": "API_TYPE_OPENAI"}
    elif spec.routing == "headerBasedRouting":
        routing = {"headerName": spec.header_name}
    return {
        "name": spec.name,
        "zones": list(spec.zones),
        spec.auth: {},
        spec.routing: routing,
        "endpointConfiguration": {"additionalDns": list(spec.additional_dns)},
    }


HOST_SUFFIX = ".localhost"  # `<id>.localhost` resolves to loopback (RFC 6761) in browsers, curl, systemd


def gateway_hosts(gateway_id: str, spec: GatewaySpec) -> tuple[str, ...]:
    """The host names a gateway answers to: `<id>.localhost` and its additional DNS names. A request whose
    Host header names none of any gateway's hosts goes to the default gateway."""
    return (f"{gateway_id}{HOST_SUFFIX}", *spec.additional_dns)


def deployment_zones(gateway_zones: Sequence[tuple[str, ...]], field_name: str = "gatewayIds") -> tuple[str, ...]:
    """The zones a deployment on these gateways (their `zones`, in `gatewayIds` order) may run in: those of
    every gateway that lists zones, in the first such gateway's order; () when none does (every zone).
    FieldError naming `field_name` when two gateways share no zone: nowhere would satisfy both."""
    allowed: tuple[str, ...] = ()
    restricted = False
    for zones in gateway_zones:
        if not zones:
            continue
        allowed = tuple(z for z in allowed if z in zones) if restricted else zones
        restricted = True
        if not allowed:
            raise FieldError(
                field_name,
                "these gateways share no zone (zones "
                + "; ".join(", ".join(z) for z in gateway_zones if z)
                + "): a deployment on all of them could run nowhere; name gateways whose zones overlap",
            )
    return allowed
