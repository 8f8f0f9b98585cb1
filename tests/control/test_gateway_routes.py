"""The controller's per-gateway routing table: a deployment is routed on exactly the gateways it names."""

from __future__ import annotations

from tide.control.controller import gateway_routes
from tide.gateway.routes import DeploymentRoute
from tide.spec import DeploymentSpec, InstanceTypeInfo, default_catalog, parse_deployment
from tide.spec.gateway import gateway_to_dict, parse_gateway
from tide.store.gateways import GatewayRecord

CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0),)
)


def spec(name: str, model: str, gateways: list[str]) -> DeploymentSpec:
    raw = {
        "name": name,
        "gatewayIds": gateways,
        "model": {"name": model, "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
    }
    return parse_deployment(raw, CATALOG)


def gateway(gateway_id: str, raw: dict[str, object]) -> GatewayRecord:
    return GatewayRecord(gateway_id, gateway_to_dict(parse_gateway({"name": gateway_id, **raw})), 0.0, 0.0)


def test_each_gateway_gets_the_deployments_that_name_it() -> None:
    specs = {"chat-a": spec("chat-a", "chat", ["default"]), "chat-b": spec("chat-b", "chat", ["default", "team"])}
    routes = {"chat": [DeploymentRoute(d, "chat", 100, ()) for d in specs]}
    gateways = [
        gateway("default", {"coreWeaveAuth": {}, "bodyBasedRouting": {}}),
        gateway("team", {"apiKeyAuth": {}, "headerBasedRouting": {"headerName": "X-Model"}}),
        gateway(
            "idle", {"coreWeaveAuth": {}, "pathBasedRouting": {}, "endpointConfiguration": {"additionalDns": ["a.b"]}}
        ),
    ]
    default, team, idle = gateway_routes(gateways, specs, routes)
    assert default.models == {"chat": ("chat-a", "chat-b")}
    assert (team.models, team.model_header, team.hosts) == ({"chat": ("chat-b",)}, "x-model", ("team.localhost",))
    assert (idle.models, idle.hosts) == ({}, ("idle.localhost", "a.b"))
