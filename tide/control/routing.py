"""What the gateways are told: each deployment's route, and each gateway resource's view of them.

Pure: the controller passes what it read (its runtimes, the gateway resources and their keys from the
store) and pushes what these return (`tide/control/route_cache.py` keeps the routes between pushes, so a
change rebuilds only what changed).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence

from tide.backends.base import ReplicaPhase
from tide.control.lifecycle import route_failure
from tide.control.runtime import DeploymentRuntime
from tide.errors import FieldError
from tide.gateway.routes import (
    MANAGEMENT_TOKEN_KEY_ID,
    DeploymentRoute,
    GatewayRoutes,
    KeyGrant,
    ReplicaEndpoint,
)
from tide.spec import DeploymentSpec
from tide.spec.deployment import DEFAULT_GATEWAY_ID
from tide.spec.gateway import deployment_zones, gateway_hosts, parse_gateway
from tide.store.gateways import GatewayRecord, KeyLimits

log = logging.getLogger("tide.control")


def deployment_route(runtime: DeploymentRuntime, manages_replicas: bool) -> DeploymentRoute | None:
    """A deployment's route: its ready replicas in rotation (or, for an external engine, its endpoints),
    its weight and queue bounds, and why it fails when it has no replica to offer. None: not routed
    (no valid spec, disabled, or being deleted). `manages_replicas`: whether its engine runs replicas."""
    spec = runtime.spec
    if spec is None or spec.disabled or runtime.record.deleting:
        return None
    if manages_replicas:
        endpoints = tuple(
            ReplicaEndpoint(
                replica_id=rid,
                base_url=state.base_url,
                max_concurrency=spec.autoscaling.max_concurrency,
            )
            for rid, state in sorted(runtime.replicas.items())
            if state.phase is ReplicaPhase.READY and state.base_url and rid not in runtime.draining
        )
    else:
        endpoints = tuple(
            ReplicaEndpoint(replica_id=f"{runtime.id}-ext{i}", base_url=url)
            for i, url in enumerate(spec.runtime.endpoints)
        )
    return DeploymentRoute(
        deployment_id=runtime.id,
        model_name=spec.routing_name,
        weight=spec.traffic.weight,
        replicas=endpoints,
        max_queue=spec.autoscaling.max_queue,
        max_queue_wait_s=spec.autoscaling.max_queue_wait_s,
        routing=spec.traffic.routing,
        failure=route_failure(runtime.failure, runtime.crash_message, runtime.consecutive_crashes)
        if manages_replicas and not endpoints
        else None,
    )


def gateway_routes(
    gateways: list[GatewayRecord],
    specs: Mapping[str, DeploymentSpec],
    routes: Mapping[str, Sequence[DeploymentRoute]],
    key_grants: Mapping[str, Mapping[str, KeyLimits]] | None = None,
    token_hash: str | None = None,
) -> tuple[GatewayRoutes, ...]:
    """Each gateway resource with the routed deployments (by id in `specs`) that name it in gatewayIds,
    by model name, and the credentials it accepts: an apiKeyAuth gateway its own keys; a coreWeaveAuth
    gateway the management API's token (its SHA-256, `token_hash`), except the default gateway, which
    keeps the process-wide rule (open, or `--api-keys-file`) so that `tide up` serves without a token."""
    out = []
    for record in gateways:
        try:
            spec = parse_gateway(record.spec)
        except FieldError:
            log.warning("gateway %s has an invalid stored spec; it serves nothing", record.id)
            continue
        keys: dict[str, KeyGrant] | None = None
        if spec.auth == "apiKeyAuth":
            keys = {h: KeyGrant(*limits) for h, limits in (key_grants or {}).get(record.id, {}).items()}
        elif record.id != DEFAULT_GATEWAY_ID:  # coreWeaveAuth: the token that manages the resources
            keys = {token_hash: KeyGrant(MANAGEMENT_TOKEN_KEY_ID)} if token_hash else {}
        models: dict[str, list[str]] = {}
        for model_name, rs in routes.items():
            for route in rs:
                deployment = specs.get(route.deployment_id)
                if deployment is not None and record.id in deployment.gateway_ids:
                    models.setdefault(model_name, []).append(route.deployment_id)
        out.append(
            GatewayRoutes(
                gateway_id=record.id,
                hosts=gateway_hosts(record.id, spec),
                model_header=spec.header_name,
                models={name: tuple(ids) for name, ids in models.items()},
                keys=keys,
            )
        )
    return tuple(out)


def update_gateway_routes(
    views: tuple[GatewayRoutes, ...],
    specs: Mapping[str, DeploymentSpec],
    routes: Mapping[str, Sequence[DeploymentRoute]],
    names: set[str],
) -> tuple[GatewayRoutes, ...]:
    """`views` (from `gateway_routes`) with only the model names in `names` rebuilt; the others keep their
    very tuples, so the gateway rebuilds only what changed. `specs`: the specs of those names' deployments."""
    out = []
    for view in views:
        models = dict(view.models)
        for name in names:
            ids = tuple(
                route.deployment_id
                for route in routes.get(name, ())
                if (spec := specs.get(route.deployment_id)) is not None and view.gateway_id in spec.gateway_ids
            )
            if ids:
                if models.get(name) != ids:
                    models[name] = ids
            else:
                models.pop(name, None)
        out.append(dataclasses.replace(view, models=models))
    return tuple(out)


def specs_of(runtimes: Iterable[DeploymentRuntime]) -> dict[str, DeploymentSpec]:
    """Deployment id -> its parsed spec, for the deployments that have one."""
    return {r.id: r.spec for r in runtimes if r.spec is not None}


def refreshed_views(
    views: tuple[GatewayRoutes, ...],
    runtimes: Mapping[str, DeploymentRuntime],
    routes: Mapping[str, Sequence[DeploymentRoute]],
    *,
    gateways_changed: bool,
    names: set[str],
    gateways: list[GatewayRecord],
    key_grants: Mapping[str, Mapping[str, KeyLimits]],
    token_hash: str | None,
) -> tuple[GatewayRoutes, ...]:
    """The gateway view to push after a change: rebuilt whole when the gateway resources changed; else
    only the model names in `names` (a PATCH costs the same at 10 or 10,000 deployments); else `views`."""
    if gateways_changed:
        return gateway_routes(gateways, specs_of(runtimes.values()), routes, key_grants, token_hash)
    if not names:
        return views
    specs = {
        route.deployment_id: spec
        for name in names
        for route in routes.get(name, ())
        if (runtime := runtimes.get(route.deployment_id)) is not None and (spec := runtime.spec)
    }
    return update_gateway_routes(views, specs, routes, names)


def gateway_zones(
    gateways: Iterable[GatewayRecord], specs: Mapping[str, DeploymentSpec], deployment_ids: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """The zones each deployment's gateways allow it (gateway `zones`; none listed: every zone, and an
    empty answer when no gateway lists any). `specs`: deployment id -> spec, for every id asked about."""
    zones = {record.id: tuple(record.spec.get("zones") or ()) for record in gateways}
    if not any(zones.values()):
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for deployment_id in deployment_ids:
        gateway_zones = [zones.get(g, ()) for g in specs[deployment_id].gateway_ids]
        try:
            out[deployment_id] = deployment_zones(gateway_zones)
        except FieldError:  # the API refuses this; a race of two updates can still leave it: the first wins
            out[deployment_id] = next(z for z in gateway_zones if z)
    return out
