"""What the controller tells the gateways (`tide/control/routing.py`, pure), table-driven: a deployment's
route from its replicas; each gateway's view, routed on exactly the gateways a deployment names."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control.routing import deployment_route, gateway_routes, gateway_zones, refreshed_views
from tide.control.runtime import DeploymentRuntime
from tide.gateway.routes import DeploymentRoute
from tide.spec import DeploymentSpec, InstanceTypeInfo, default_catalog, parse_deployment
from tide.spec.gateway import gateway_to_dict, parse_gateway
from tide.store import DeploymentRecord
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


def runtime(name: str, raw: dict[str, Any] | None = None) -> DeploymentRuntime:
    raw = raw or {
        "name": name,
        "model": {"name": "chat", "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"concurrency": 4, "maxConcurrency": 4, "maxQueue": 7},
    }
    record = DeploymentRecord(id=name, name=name, spec=raw, generation=1, created_at=0.0, updated_at=0.0)
    return DeploymentRuntime(id=name, record=record, spec=parse_deployment(raw, CATALOG))


def with_replica(rt: DeploymentRuntime, rid: str, phase: ReplicaPhase, url: str | None = "http://r/v1") -> None:
    assert rt.spec is not None
    rt.replicas[rid] = ReplicaState(rt.id, rid, rt.spec.replica_template(), phase, base_url=url)


# replicas (id, phase, has a URL), draining ids, failure, crashes -> endpoints routed, the failure answered
ROUTE_CASES: list[
    tuple[str, list[tuple[str, ReplicaPhase, bool]], set[str], str | None, int, list[str], str | None]
] = [
    (
        "ready replicas, by id",
        [("b", ReplicaPhase.READY, True), ("a", ReplicaPhase.READY, True)],
        set(),
        None,
        0,
        ["a", "b"],
        None,
    ),
    (
        "starting and parked ones are not routed",
        [("a", ReplicaPhase.ENGINE_LOAD, False), ("b", ReplicaPhase.PARKED, True), ("c", ReplicaPhase.READY, True)],
        set(),
        None,
        0,
        ["c"],
        None,
    ),
    (
        "a draining one is out of rotation",
        [("a", ReplicaPhase.READY, True), ("b", ReplicaPhase.READY, True)],
        {"b"},
        None,
        0,
        ["a"],
        None,
    ),
    ("none ready, nothing failing: requests wait", [("a", ReplicaPhase.ENGINE_LOAD, False)], set(), None, 0, [], None),
    ("none ready and failing: the failure is answered", [], set(), "weights missing", 0, [], "weights missing"),
    ("a crash loop is answered", [], set(), None, 5, [], "crashed"),
    (
        "a failure with a ready replica: it serves",
        [("a", ReplicaPhase.READY, True)],
        set(),
        "old failure",
        0,
        ["a"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "replicas", "draining", "failure", "crashes", "routed", "answered"),
    ROUTE_CASES,
    ids=[c[0] for c in ROUTE_CASES],
)
def test_a_deployments_route_holds_its_ready_replicas_in_rotation_or_why_it_fails(
    case: str,
    replicas: list[tuple[str, ReplicaPhase, bool]],
    draining: set[str],
    failure: str | None,
    crashes: int,
    routed: list[str],
    answered: str | None,
) -> None:
    rt = runtime("chat-a")
    for rid, phase, has_url in replicas:
        with_replica(rt, rid, phase, "http://r/v1" if has_url else None)
    rt.draining, rt.failure, rt.consecutive_crashes = draining, failure, crashes
    rt.crash_message = "replica crashed: exit 1" if crashes else None
    route = deployment_route(rt, manages_replicas=True)
    assert route is not None
    assert [e.replica_id for e in route.replicas] == routed, case
    assert all(e.max_concurrency == 4 for e in route.replicas)
    assert (route.model_name, route.max_queue) == ("chat", 7)
    if answered is None:
        assert route.failure is None, case
    else:
        assert route.failure is not None and answered in route.failure, case


def test_an_external_deployment_routes_its_endpoints_and_a_deleted_or_disabled_one_nothing() -> None:
    ext = runtime(
        "ext1", {"name": "ext1", "runtime": {"engine": "external", "endpoints": ["http://a/v1", "http://b/v1"]}}
    )
    route = deployment_route(ext, manages_replicas=False)
    assert route is not None
    assert [(e.replica_id, e.base_url) for e in route.replicas] == [
        ("ext1-ext0", "http://a/v1"),
        ("ext1-ext1", "http://b/v1"),
    ]
    assert route.failure is None
    deleting = runtime("chat-a")
    deleting.record = dataclasses.replace(deleting.record, deleting=True)
    assert deployment_route(deleting, manages_replicas=True) is None
    disabled = runtime("chat-b")
    assert disabled.spec is not None
    disabled.spec = dataclasses.replace(disabled.spec, disabled=True)
    assert deployment_route(disabled, manages_replicas=True) is None
    broken = runtime("chat-c")
    broken.spec = None  # its stored spec does not parse
    assert deployment_route(broken, manages_replicas=True) is None


def test_a_refresh_rebuilds_the_named_models_or_everything_when_the_gateways_changed() -> None:
    runtimes = {d: runtime(d) for d in ("chat-a", "chat-b")}  # on the default gateway
    routes = {"chat": [DeploymentRoute(d, "chat", 100, ()) for d in runtimes]}
    gateways = [gateway("default", {"coreWeaveAuth": {}, "bodyBasedRouting": {}})]
    kwargs: dict[str, Any] = {"gateways": gateways, "key_grants": {}, "token_hash": None}
    full = refreshed_views((), runtimes, routes, gateways_changed=True, names=set(), **kwargs)
    assert full[0].models == {"chat": ("chat-a", "chat-b")}
    assert refreshed_views(full, runtimes, routes, gateways_changed=False, names=set(), **kwargs) is full
    fewer = {"chat": routes["chat"][:1]}
    partial = refreshed_views(full, runtimes, fewer, gateways_changed=False, names={"chat"}, **kwargs)
    assert partial[0].models == {"chat": ("chat-a",)}
    assert refreshed_views(full, runtimes, fewer, gateways_changed=True, names=set(), **kwargs) == partial


@pytest.mark.parametrize(
    ("case", "zones", "names", "expected"),
    [
        ("no gateway lists zones: no bound", {"default": [], "team": []}, ["default"], {}),
        ("its gateway's zones", {"default": ["z1"], "team": ["z2"]}, ["team"], {"chat-a": ("z2",)}),
        ("a gateway without zones allows every zone", {"default": [], "team": ["z2"]}, ["default"], {"chat-a": ()}),
        (
            "two gateways: where both allow",
            {"default": ["z1", "z2"], "team": ["z2"]},
            ["default", "team"],
            {"chat-a": ("z2",)},
        ),
        (
            "two gateways that share none: the first wins",
            {"default": ["z1"], "team": ["z2"]},
            ["default", "team"],
            {"chat-a": ("z1",)},
        ),
    ],
)
def test_a_deployment_runs_in_the_zones_its_gateways_allow(
    case: str, zones: dict[str, list[str]], names: list[str], expected: dict[str, tuple[str, ...]]
) -> None:
    records = [GatewayRecord(g, {"name": g, "zones": z}, 0.0, 0.0) for g, z in zones.items()]
    assert gateway_zones(records, {"chat-a": spec("chat-a", "chat", names)}, ["chat-a"]) == expected, case
