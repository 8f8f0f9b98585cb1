"""The controller <-> gateway channel, the pure half: RouteTable as JSON and summed load signals.

Scaled out, several gateway processes follow one controller. The controller pushes each of them the
full route table (at once on subscribe, again on every change); each gateway posts its load snapshot
every second, tagged with its gateway id and the route version it has applied. The controller sums
in-flight and queued requests over the gateways heard from in the last `LIVE_S` seconds.

No I/O here: the clock is a parameter. `tide/control/channel_http.py` puts this on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tide.gateway.routes import (
    DeploymentLoad,
    DeploymentRoute,
    GatewayRoutes,
    ReplicaEndpoint,
    RouteTable,
)
from tide.spec.routing import LEAST_LOADED

LIVE_S = 3.0  # a gateway silent this long no longer counts


# -- RouteTable <-> JSON -----------------------------------------------------------------------------


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


def route_table_from_json(data: Mapping[str, Any]) -> RouteTable:
    routes: dict[str, tuple[DeploymentRoute, ...]] = {}
    for name, deployments in data["routes"].items():
        routes[str(name)] = tuple(
            DeploymentRoute(
                deployment_id=str(r["deploymentId"]),
                model_name=str(r["modelName"]),
                weight=int(r["weight"]),
                max_queue=int(r["maxQueue"]),
                max_queue_wait_s=float(r["maxQueueWaitS"]),
                routing=str(r.get("routing", LEAST_LOADED)),
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
            for r in deployments
        )
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


# -- summing load over gateways ----------------------------------------------------------------------


@dataclass
class GatewayReport:
    at: float
    routes_version: int
    loads: dict[str, DeploymentLoad] = field(default_factory=dict)


class LoadAggregator:
    """The last report of every gateway; sums over the live ones.

    In-flight and queued counts are summed over live gateways. Request and error totals are not: a
    gateway that stops reporting would take its total out of the sum and the counter would go backwards.
    They are accumulated from each gateway's increments instead, so they only ever grow while this
    controller runs (a gateway seen for the first time, or restarted, adds all it reports).
    """

    def __init__(self, live_s: float = LIVE_S) -> None:
        self.live_s = live_s
        self.reports: dict[str, GatewayReport] = {}
        self._requests: dict[str, int] = {}  # deployment -> requests routed, over all gateways ever seen
        self._errors: dict[str, dict[str, int]] = {}  # deployment -> code -> count, likewise

    def report(self, gateway_id: str, loads: Mapping[str, DeploymentLoad], now: float, routes_version: int = 0) -> None:
        previous = self.reports.get(gateway_id)
        before = previous.loads if previous is not None else {}
        for deployment_id, load in loads.items():
            last = before.get(deployment_id)
            self._requests[deployment_id] = self._requests.get(deployment_id, 0) + _increase(
                load.requests_total, last.requests_total if last is not None else 0
            )
            errors = self._errors.setdefault(deployment_id, {})
            for code, count in load.errors.items():
                errors[code] = errors.get(code, 0) + _increase(count, last.errors.get(code, 0) if last else 0)
        self.reports[gateway_id] = GatewayReport(now, routes_version, dict(loads))

    def live(self, now: float) -> dict[str, GatewayReport]:
        # Forget the long-dead ones so the map stays small.
        for gateway_id in [g for g, r in self.reports.items() if now - r.at > 10 * self.live_s]:
            del self.reports[gateway_id]
        return {g: r for g, r in self.reports.items() if now - r.at < self.live_s}

    def snapshot(self, now: float) -> dict[str, DeploymentLoad]:
        out: dict[str, DeploymentLoad] = {}
        for report in self.live(now).values():
            for deployment_id, load in report.loads.items():
                prev = out.get(deployment_id)
                out[deployment_id] = load if prev is None else _added(prev, load)
        return {
            deployment_id: replace(
                load,
                requests_total=self._requests.get(deployment_id, 0),
                errors=dict(self._errors.get(deployment_id, {})),
            )
            for deployment_id, load in out.items()
        }

    def in_flight(self, replica_id: str, now: float, routes_version: int = 0) -> int:
        """Requests on a replica summed over live gateways.

        A live gateway whose last report predates `routes_version` (it has not yet confirmed the table
        that took the replica out of rotation) counts as one request, so a drain waits for it.
        """
        total = 0
        for report in self.live(now).values():
            n = sum(load.per_replica_in_flight.get(replica_id, 0) for load in report.loads.values())
            if n == 0 and report.routes_version < routes_version:
                n = 1
            total += n
        return total

    def gateways(self, now: float) -> list[str]:
        return sorted(self.live(now))


def _added(a: DeploymentLoad, b: DeploymentLoad) -> DeploymentLoad:
    return DeploymentLoad(
        a.in_flight + b.in_flight,
        a.queued + b.queued,
        _sum_counts(a.per_replica_in_flight, b.per_replica_in_flight),
        a.requests_total + b.requests_total,
        _sum_counts(a.errors, b.errors),
        # A gateway without the averages counts with its instantaneous numbers.
        None if a.load_average is None and b.load_average is None else a.average + b.average,
        None if a.queued_average is None and b.queued_average is None else a.queued_avg + b.queued_avg,
    )


def _sum_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, n in b.items():
        out[key] = out.get(key, 0) + n
    return out


def _increase(now: int, before: int) -> int:
    """How much a gateway's counter grew; a smaller value means it restarted from zero."""
    return now - before if now >= before else now
