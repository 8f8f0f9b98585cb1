"""The wire format gateways and controllers share: route tables and load snapshots as JSON.

The controller (`tide/control/channel_http.py`) pushes route tables to gateway processes and reads their
load back; a gateway (`tide/gateway/follower.py`) reads the tables and posts its load. Both import this
module, so the gateway never imports the controller. A standalone gateway's route file
(`tide/gateway/route_file.py`) is parsed by the same `deployment_route_from_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tide.gateway.routes import DeploymentLoad, DeploymentRoute, GatewayRoutes, KeyGrant, ReplicaEndpoint, RouteTable
from tide.gateway.usage import Usage
from tide.spec.deployment import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_WAIT_S, DEFAULT_WEIGHT
from tide.spec.routing import LEAST_LOADED


def route_table_to_json(table: RouteTable) -> dict[str, Any]:
    return {
        "routes": {name: [_route_json(r) for r in deployments] for name, deployments in table.routes.items()},
        "gateways": [_gateway_json(g, {name: list(ids) for name, ids in g.models.items()}) for g in table.gateways],
    }


def _route_json(r: DeploymentRoute) -> dict[str, Any]:
    return {
        "deploymentId": r.deployment_id,
        "modelName": r.model_name,
        "weight": r.weight,
        "maxQueue": r.max_queue,
        "maxQueueWaitS": r.max_queue_wait_s,
        "routing": r.routing,
        "failure": r.failure,
        "replicas": [
            {"replicaId": e.replica_id, "baseUrl": e.base_url, "maxConcurrency": e.max_concurrency} for e in r.replicas
        ],
    }


def _gateway_json(g: GatewayRoutes, models: Mapping[str, list[str] | None]) -> dict[str, Any]:
    return {
        "gatewayId": g.gateway_id,
        "hosts": list(g.hosts),
        "modelHeader": g.model_header,
        "models": models,
        "keys": None if g.keys is None else {h: _grant_to_json(k) for h, k in g.keys.items()},
        # What gateways from before per-key ids and token limits read: they must not see it open.
        "keyHashes": None if g.keys is None else sorted(g.keys),
        "keyLimits": {h: k.requests_per_minute for h, k in (g.keys or {}).items() if k.requests_per_minute},
    }


def route_delta_to_json(old: RouteTable, new: RouteTable) -> dict[str, Any]:
    """What changed from `old` to `new`, for a gateway that has `old` (`apply_route_delta`): the model names
    whose routes changed (null: gone), and per gateway whose view changed its fields and the model names
    whose deployment ids changed (null: gone); `gatewayOrder` lists every gateway. A change to one
    deployment sends its model name, not the 10,000 others."""
    routes: dict[str, Any] = {
        name: [_route_json(r) for r in deployments]
        for name, deployments in new.routes.items()
        if old.routes.get(name) != deployments
    }
    routes.update({name: None for name in old.routes.keys() - new.routes.keys()})
    before = {g.gateway_id: g for g in old.gateways}
    gateways = []
    for g in new.gateways:
        was = before.get(g.gateway_id)
        if was is None:
            gateways.append(_gateway_json(g, {name: list(ids) for name, ids in g.models.items()}))
            continue
        models: dict[str, list[str] | None] = {
            name: list(ids) for name, ids in g.models.items() if was.models.get(name) != ids
        }
        models.update({name: None for name in was.models.keys() - g.models.keys()})
        fields_changed = (g.hosts, g.model_header, g.keys) != (was.hosts, was.model_header, was.keys)
        if models or fields_changed:
            gateways.append(_gateway_json(g, models))
    return {"routes": routes, "gateways": gateways, "gatewayOrder": [g.gateway_id for g in new.gateways]}


def apply_route_delta(table: RouteTable, data: Mapping[str, Any]) -> RouteTable:
    """`table` with a `route_delta_to_json` applied. Model names and gateways the delta does not name keep
    their very objects, so `Gateway.set_routes` rebuilds only what changed."""
    routes = dict(table.routes)
    for name, deployments in data["routes"].items():
        if deployments is None:
            routes.pop(str(name), None)
        else:
            routes[str(name)] = tuple(deployment_route_from_json(r) for r in deployments)
    by_id = {g.gateway_id: g for g in table.gateways}
    for g in data["gateways"]:
        gateway_id = str(g["gatewayId"])
        was = by_id.get(gateway_id)
        models = dict(was.models) if was is not None else {}
        for name, ids in g["models"].items():
            if ids is None:
                models.pop(str(name), None)
            else:
                models[str(name)] = tuple(str(i) for i in ids)
        by_id[gateway_id] = _gateway_from_json(g, models)
    return RouteTable(routes, tuple(by_id[str(i)] for i in data["gatewayOrder"]))


def _gateway_from_json(g: Mapping[str, Any], models: Mapping[str, tuple[str, ...]]) -> GatewayRoutes:
    return GatewayRoutes(
        gateway_id=str(g["gatewayId"]),
        hosts=tuple(str(h) for h in g["hosts"]),
        model_header=str(g.get("modelHeader") or ""),
        models=models,
        keys=_keys_from_json(g),
    )


def deployment_route_from_json(r: Mapping[str, Any]) -> DeploymentRoute:
    """One deployment's route; a field left out takes the spec's default (the route file leaves them out)."""
    return DeploymentRoute(
        deployment_id=str(r["deploymentId"]),
        model_name=str(r["modelName"]),
        weight=int(r.get("weight", DEFAULT_WEIGHT)),
        max_queue=int(r.get("maxQueue", DEFAULT_MAX_QUEUE)),
        max_queue_wait_s=float(r.get("maxQueueWaitS", DEFAULT_MAX_QUEUE_WAIT_S)),
        routing=str(r.get("routing", LEAST_LOADED)),  # absent from an older leader
        failure=None if r.get("failure") is None else str(r["failure"]),
        replicas=tuple(
            ReplicaEndpoint(
                replica_id=str(e["replicaId"]),
                base_url=str(e["baseUrl"]),
                max_concurrency=None if e.get("maxConcurrency") is None else int(e["maxConcurrency"]),
            )
            for e in r["replicas"]
        ),
    )


def route_table_from_json(data: Mapping[str, Any]) -> RouteTable:
    routes = {
        str(name): tuple(deployment_route_from_json(r) for r in deployments)
        for name, deployments in data["routes"].items()
    }
    gateways = tuple(
        _gateway_from_json(g, {str(name): tuple(str(i) for i in ids) for name, ids in g["models"].items()})
        for g in data.get("gateways") or ()  # absent from an older leader: one implicit gateway
    )
    return RouteTable(routes, gateways)


def _grant_to_json(grant: KeyGrant) -> dict[str, Any]:
    return {
        "keyId": grant.key_id,
        "requestsPerMinute": grant.requests_per_minute,
        "tokensPerMinute": grant.tokens_per_minute,
    }


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _keys_from_json(g: Mapping[str, Any]) -> dict[str, KeyGrant] | None:
    keys = g.get("keys")
    if keys is not None:
        return {
            str(h): KeyGrant(
                str(k["keyId"]), _optional_int(k.get("requestsPerMinute")), _optional_int(k.get("tokensPerMinute"))
            )
            for h, k in keys.items()
        }
    if g.get("keyHashes") is None:  # no keys of its own (or a leader from before gateway keys)
        return None
    limits = g.get("keyLimits") or {}  # a leader from before key ids: the hash's start names the key
    return {str(h): KeyGrant(f"sha256:{str(h)[:12]}", _optional_int(limits.get(h))) for h in g["keyHashes"]}


def _usage_to_json(usage: Usage) -> dict[str, int]:
    return {
        "requests": usage.requests,
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
    }


def _usage_from_json(data: Mapping[str, Any]) -> Usage:
    return Usage(int(data.get("requests", 0)), int(data.get("promptTokens", 0)), int(data.get("completionTokens", 0)))


def load_to_json(snapshot: Mapping[str, DeploymentLoad]) -> dict[str, Any]:
    return {
        deployment_id: {
            "inFlight": load.in_flight,
            "queued": load.queued,
            "perReplicaInFlight": dict(load.per_replica_in_flight),
            "requestsTotal": load.requests_total,
            "errors": dict(load.errors),
            "loadAverage": load.load_average,
            "queuedAverage": load.queued_average,
            "keyUsage": [
                {"gatewayId": gateway_id, "keyId": key_id, **_usage_to_json(usage)}
                for (gateway_id, key_id), usage in load.key_usage.items()
            ],
            "gatewayUsage": {gateway_id: _usage_to_json(usage) for gateway_id, usage in load.gateway_usage.items()},
            "prefixCorrections": dict(load.prefix_corrections),
        }
        for deployment_id, load in snapshot.items()
    }


def load_from_json(data: Mapping[str, Any]) -> dict[str, DeploymentLoad]:
    return {
        str(deployment_id): DeploymentLoad(
            in_flight=int(load["inFlight"]),
            queued=int(load["queued"]),
            per_replica_in_flight={str(k): int(v) for k, v in load.get("perReplicaInFlight", {}).items()},
            requests_total=int(load.get("requestsTotal", 0)),
            errors={str(k): int(v) for k, v in load.get("errors", {}).items()},
            load_average=None if load.get("loadAverage") is None else float(load["loadAverage"]),
            queued_average=None if load.get("queuedAverage") is None else float(load["queuedAverage"]),
            key_usage={(str(u["gatewayId"]), str(u["keyId"])): _usage_from_json(u) for u in load.get("keyUsage") or ()},
            gateway_usage={str(g): _usage_from_json(u) for g, u in (load.get("gatewayUsage") or {}).items()},
            prefix_corrections={str(k): int(v) for k, v in (load.get("prefixCorrections") or {}).items()},
        )
        for deployment_id, load in data.items()
    }
