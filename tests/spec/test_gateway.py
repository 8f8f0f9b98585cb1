"""Gateway spec rules: exactly one authentication type and one routing strategy, each bad field named."""

from __future__ import annotations

from typing import Any

import pytest

from tide.errors import FieldError
from tide.spec.gateway import GatewaySpec, deployment_zones, gateway_hosts, gateway_to_dict, parse_gateway

ZONES = ("us-east-04a", "us-west-01a")


def base(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": "edge", "coreWeaveAuth": {}, "bodyBasedRouting": {"apiType": "API_TYPE_OPENAI"}}
    raw.update(overrides)
    return raw


def field_of(raw: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(FieldError) as info:
        parse_gateway(raw, ZONES)
    return info.value.field, info.value.message


def test_defaults_and_round_trip() -> None:
    spec = parse_gateway(base(), ZONES)
    assert spec == GatewaySpec(name="edge")
    assert parse_gateway(gateway_to_dict(spec), ZONES) == spec
    header = parse_gateway(
        {
            "name": "team-a",
            "zones": ["us-east-04a"],
            "apiKeyAuth": {},
            "headerBasedRouting": {"headerName": "X-Model"},
            "endpointConfiguration": {"additionalDns": ["Inference.Example.com"]},
        },
        ZONES,
    )
    assert (header.auth, header.routing, header.header_name) == ("apiKeyAuth", "headerBasedRouting", "x-model")
    assert gateway_hosts("team-a", header) == ("team-a.localhost", "inference.example.com")


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (base(apiKeyAuth={}), "apiKeyAuth", "exactly one authentication type"),
        ({"name": "edge", "pathBasedRouting": {}}, "coreWeaveAuth", "one authentication type is required"),
        (base(pathBasedRouting={}), "pathBasedRouting", "exactly one routing strategy"),
        ({"name": "edge", "coreWeaveAuth": {}}, "bodyBasedRouting", "one routing strategy is required"),
        (base(weightsAndBiasesAuth={"apiKey": "x"}), "weightsAndBiasesAuth", "not supported"),
        (base(bodyBasedRouting={"apiType": "API_TYPE_GRPC"}), "bodyBasedRouting.apiType", "API_TYPE_OPENAI"),
        (
            {"name": "edge", "coreWeaveAuth": {}, "headerBasedRouting": {}},
            "headerBasedRouting.headerName",
            "header name",
        ),
        (
            {"name": "edge", "coreWeaveAuth": {}, "headerBasedRouting": {"headerName": "Authorization"}},
            "headerBasedRouting.headerName",
            "reserved",
        ),
        (base(zones=["mars-01"]), "zones[0]", "not offered"),
        (
            base(endpointConfiguration={"additionalDns": ["not a host"]}),
            "endpointConfiguration.additionalDns[0]",
            "DNS",
        ),
        (base(name="x"), "name", "4-63"),
        (base(tls={}), "tls", "unknown field"),
    ],
)
def test_bad_field_is_named(raw: dict[str, Any], field: str, words: str) -> None:
    got_field, message = field_of(raw)
    assert got_field == field
    assert words in message


def test_a_deployment_runs_where_all_its_gateways_allow() -> None:
    assert deployment_zones([(), ()]) == ()  # no gateway lists zones: every zone
    assert deployment_zones([("b", "a"), ()]) == ("b", "a")  # the restricting gateway's order of preference
    assert deployment_zones([(), ("a", "b", "c"), ("c", "a")]) == ("a", "c")
    with pytest.raises(FieldError) as refused:
        deployment_zones([("a",), ("b",)])
    assert refused.value.field == "gatewayIds" and "share no zone" in refused.value.message
