"""The wire format gateways and controllers share: route tables and load snapshots as JSON.

The controller (`tide/control/channel_http.py`) pushes route tables to gateway processes and reads their
load back; a gateway (`tide/gateway/follower.py`) reads the tables and posts its load. Both import this
module, so the gateway never imports the controller. A standalone gateway's route file
(`tide/gateway/route_file.py`) is parsed by the same `deployment_route_from_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tide.gateway.routes import DeploymentLoad, DeploymentRoute, GatewayRoutes, ReplicaEndpoint, RouteTable
from tide.spec.deployment import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_WAIT_S, DEFAULT_WEIGHT
from tide.spec.routing import LEAST_LOADED


def route_table_to_json(table: RouteTable) -> dict[str, Any]:
    return {
        "routes": {
            name: [
                {
                    "deploymentId": r.deployment_id,
                    "modelName": r.model_name,
                    "weight": r.weight,
                    "maxQueue": r.max_queue,
                    "maxQueueWaitS": r.max_queue_wait_s,
                    "routing": r.routing,
                    "failure": r.failure,
                    "replicas": [
                        {"replicaId": e.replica_id, "baseUrl": e.base_url, "maxConcurrency": e.max_concurrency}
                        for e in r.replicas
                    ],
                }
                for r in deployments
            ]
            for name, deployments in table.routes.items()
        },
        "gateways": [
            {
                "gatewayId": g.gateway_id,
                "hosts": list(g.hosts),
                "modelHeader": g.model_header,
                "models": {name: list(ids) for name, ids in g.models.items()},
                "keyHashes": None if g.key_hashes is None else sorted(g.key_hashes),
                "keyLimits": dict(g.key_limits),
            }
            for g in table.gateways
        ],
    }


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
        GatewayRoutes(
            gateway_id=str(g["gatewayId"]),
            hosts=tuple(str(h) for h in g["hosts"]),
            model_header=str(g.get("modelHeader") or ""),
            models={str(name): tuple(str(i) for i in ids) for name, ids in g["models"].items()},
            key_hashes=None if g.get("keyHashes") is None else frozenset(str(h) for h in g["keyHashes"]),
            key_limits={str(h): int(n) for h, n in (g.get("keyLimits") or {}).items()},
        )
        for g in data.get("gateways") or ()  # absent from an older leader: one implicit gateway
    )
    return RouteTable(routes, gateways)


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
        )
        for deployment_id, load in data.items()
    }
