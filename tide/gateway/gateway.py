"""The gateway: routing table, request routing, the activator queue, load signals, and the listener."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

import orjson

from tide.gateway import prefix
from tide.gateway.activator import QueueSettings
from tide.gateway.balancing import DeploymentState, ModelState, ReplicaState
from tide.gateway.errors import error_payload, error_response, json_response, model_not_found
from tide.gateway.exchange import HOP_BY_HOP, Exchange, Upstreams
from tide.gateway.keys import GatewayKeys
from tide.gateway.openapi import OPENAPI_PATH
from tide.gateway.openapi import document as openapi_document
from tide.gateway.paths import FORWARDED_ROUTES, PathRefused, forwarded_route
from tide.gateway.prefix import prompt_chunks
from tide.gateway.ratelimit import TOKENS, KeyLimiter
from tide.gateway.replicas import ReplicaBook
from tide.gateway.routes import (
    NO_KEY_ID,
    RETIRED_USAGE_ID,
    DeploymentLoad,
    DeploymentRoute,
    GatewayRoutes,
    KeyGrant,
    RouteTable,
)
from tide.gateway.server import ClientConnection, IncomingRequest
from tide.gateway.tasks import BackgroundTasks, ReplicaCallback
from tide.gateway.upstream import UpstreamPool
from tide.gateway.usage import Usage
from tide.http_limits import ConnectionLimits, UnfinishedCount
from tide.timing import HOLD_TIMEOUT_S, RETRY_AFTER_S, UNHEALTHY_S, UPSTREAM_CONNECT_TIMEOUT_S, UPSTREAM_IDLE_TIMEOUT_S

log = logging.getLogger(__name__)


class Gateway:
    """OpenAI-compatible reverse proxy in front of model-server replicas.

    Runs on the caller's event loop (`await start(host, port)`); the controller pushes routes with
    `set_routes` and reads `load_snapshot()` / `in_flight(replica_id)`.

    Callbacks (plain functions or coroutine functions; never awaited on the request path):
    `on_demand(deployment_id)` runs for every request that has to wait: its deployment has no replica,
    or every replica is busy (callers de-duplicate); `on_replica_failure(replica_id)` runs when a replica refused or dropped a
    request before answering (it is then avoided for `unhealthy_s` while others have room).

    `upstream_idle_timeout_s`: a replica that holds a request and sends nothing for this long is cut off
    (504 to the client, or an error event mid-stream); None turns the watchdog off.
    `api_keys`: when given, every request but `/health` needs `Authorization: Bearer <key>` with one of
    them (401 `invalid_api_key` otherwise), and the header is not passed on to replicas.
    """

    def __init__(
        self,
        routes: RouteTable | None = None,
        *,
        model_header: str = "x-tide-model",
        on_demand: ReplicaCallback | None = None,
        on_replica_failure: ReplicaCallback | None = None,
        max_attempts: int = 3,
        unhealthy_s: float = UNHEALTHY_S,
        connect_timeout_s: float = UPSTREAM_CONNECT_TIMEOUT_S,
        max_body_bytes: int = 64 * 1024 * 1024,
        retry_after_s: int = RETRY_AFTER_S,
        upstream_idle_timeout_s: float | None = UPSTREAM_IDLE_TIMEOUT_S,
        api_keys: GatewayKeys | None = None,
        limits: ConnectionLimits | None = None,
        hold_until_routes: bool = False,
        hold_timeout_s: float = HOLD_TIMEOUT_S,
    ) -> None:
        self.model_header = model_header.lower().encode()
        self.on_demand = on_demand
        self.max_body_bytes = max_body_bytes
        self.retry_after_s = retry_after_s
        self.upstream_idle_timeout_s = upstream_idle_timeout_s
        self.api_keys = api_keys
        self.limits = limits or ConnectionLimits()
        self.unfinished = UnfinishedCount()
        # Headers not passed on: hop-by-hop ones, and the gateway's own API key.
        self.dropped_headers = HOP_BY_HOP | {b"authorization"} if api_keys is not None else HOP_BY_HOP
        self._watchdog: asyncio.Task[None] | None = None
        self.pool = UpstreamPool(connect_timeout_s=connect_timeout_s)
        self.tasks = BackgroundTasks()
        # Replicas draining or failing; the queues' settings; what every exchange works through.
        self.replica_book = ReplicaBook(self.tasks, unhealthy_s, on_replica_failure)
        self.queue_settings = QueueSettings(unhealthy_s=unhealthy_s, retry_after_s=retry_after_s)
        self.upstreams = Upstreams(self.pool, self.replica_book, self.tasks, max_attempts, self.response_tokens)
        self._models: dict[bytes, ModelState] = {}
        # Gateway resources: host -> (its models, its model header, its /v1/models body); the default's.
        self._by_host: dict[bytes, _GatewayView] = {}
        self._default_view: _GatewayView | None = None
        self._views: dict[str, tuple[GatewayRoutes, _GatewayView]] = {}  # gateway id -> what its view was built from
        self.limiter = KeyLimiter()  # per-key request limits of apiKeyAuth gateways
        self._deployments: dict[str, DeploymentState] = {}
        self._replicas: dict[str, ReplicaState] = {}
        # Dropped from the table with requests still in flight: set_routes adds them, the book lets each go
        # after its last request.
        self._draining = self.replica_book.draining
        self._models_list = ModelListing({})
        self._routes: Mapping[str, tuple[DeploymentRoute, ...]] = {}  # the table applied last, by model name
        # Usage of deployments removed since the gateway started (`_retire_usage`).
        self._retired = DeploymentState(DeploymentRoute(RETIRED_USAGE_ID, "", 0, ()))
        # The load snapshot, kept up to date in place: each second only the deployments in `_touched` (a
        # counter or their replicas changed since) or still in their averaging window are recomputed.
        self._loads: dict[str, DeploymentLoad] = {}
        self._loads_view: Mapping[str, DeploymentLoad] = MappingProxyType(self._loads)
        self._touched: set[str] = set()
        self._retired_version = -1  # the retired usage's version the snapshot shows
        self._clients: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._holding = False
        self.set_routes(routes or RouteTable({}))
        # Started before its controller pushed a table (a restart): requests wait for the first table
        # instead of getting a 404 for a model that exists (OpenAI clients treat 404 as final).
        self._holding = hold_until_routes and routes is None
        self.hold_timeout_s = hold_timeout_s
        self._held: list[tuple[ClientConnection, IncomingRequest, float]] = []

    # ---- lifecycle ------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 8080) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientConnection(self),
            host,
            port,
            backlog=4096,
            reuse_address=True,
        )
        self._watchdog = asyncio.create_task(self._housekeeping())
        if not prefix.NATIVE_NAMES:  # routing is the same; each prefix-aware request costs more CPU
            log.warning(
                "prompt prefix names are made in Python: the C extension tide/gateway/_prefixnames.c is not "
                "built (install Tide where a C compiler is: pip install -e .); prefix-aware routing costs "
                "a few percent more gateway CPU per request"
            )

    @property
    def port(self) -> int:
        """The port actually bound (useful after `start(port=0)`)."""
        assert self._server is not None and self._server.sockets, "gateway not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop listening, answer queued requests 503, let in-flight ones finish for `grace_s`, close."""
        if self._server is not None:
            self._server.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for deployment in self._deployments.values():
            self._fail_queue(deployment, "the gateway is shutting down")
        self._release_held(float("inf"), "the gateway is shutting down")
        deadline = asyncio.get_running_loop().time() + grace_s
        while any(c.exchange is not None for c in self._clients) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for client in list(self._clients):
            client.abort()
        self.pool.close_all()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ---- routing table --------------------------------------------------------------------------
    def set_routes(self, table: RouteTable) -> None:
        """Swap the routing table. Queued requests go to new replicas at once; dropped replicas drain.

        Only the model names whose routes changed (a different tuple than last time: the controller keeps
        unchanged ones as the same object) are rebuilt, so a change costs the same at 10 or 10,000 models."""
        previous = self._routes
        affected = [name for name, routes in table.routes.items() if previous.get(name) is not routes]
        affected += [name for name in previous if name not in table.routes]
        for name in affected:
            for route in table.routes.get(name, ()):
                for endpoint in route.replicas:
                    url = urlsplit(endpoint.base_url)
                    if url.scheme not in ("http", "https") or not url.hostname:
                        raise ValueError(f"replica {endpoint.replica_id}: bad base_url {endpoint.base_url!r}")
        old_routes = [route for name in affected for route in previous.get(name, ())]
        deployments = dict(self._deployments)
        replicas = dict(self._replicas)
        models = dict(self._models)
        for route in old_routes:
            deployments.pop(route.deployment_id, None)
            for endpoint in route.replicas:
                replicas.pop(endpoint.replica_id, None)
        updated: list[DeploymentState] = []
        for model_name in affected:
            models.pop(model_name.encode(), None)
            routes = table.routes.get(model_name)
            if routes is None:
                continue
            states: list[DeploymentState] = []
            for route in routes:
                deployment = self._deployments.get(route.deployment_id) or DeploymentState(
                    route, self.queue_settings, self._touched
                )
                deployment.update(route)
                deployment.touch()  # its replicas (the snapshot's per-replica counts) may have changed
                members: list[ReplicaState] = []
                for endpoint in route.replicas:
                    replica = self._replicas.get(endpoint.replica_id) or self._draining.pop(endpoint.replica_id, None)
                    if replica is None or replica.deployment is not deployment:
                        replica = ReplicaState(endpoint, deployment)
                    else:
                        replica.update(endpoint)
                    replica.active = True
                    members.append(replica)
                    replicas[endpoint.replica_id] = replica
                deployment.replace_replicas(members)
                deployments[route.deployment_id] = deployment
                states.append(deployment)
                updated.append(deployment)
            models[model_name.encode()] = ModelState(model_name, states)
        for route in old_routes:
            for endpoint in route.replicas:
                replica = self._replicas.get(endpoint.replica_id)
                if replica is not None and endpoint.replica_id not in replicas:
                    replica.active = False
                    if replica.in_flight > 0:
                        self._draining[endpoint.replica_id] = replica
        removed = {
            route.deployment_id: self._deployments[route.deployment_id]
            for route in old_routes
            if route.deployment_id not in deployments and route.deployment_id in self._deployments
        }
        names_changed = not previous or any((name in previous) != (name in table.routes) for name in affected)
        self._models, self._deployments, self._replicas = models, deployments, replicas
        self._routes = table.routes
        if names_changed:
            self._models_list = ModelListing(table.routes)
        self._set_gateways(table.gateways, deployments, set(affected))
        if self._holding:
            self._holding = False
            held, self._held = self._held, []
            for client, request, _since in held:
                if not client.closed:
                    self.handle(client, request)
        for deployment in removed.values():
            self._loads.pop(deployment.deployment_id, None)
            self._fail_queue(deployment, f"deployment '{deployment.deployment_id}' was removed")
            self._retire_usage(deployment)
        for deployment in updated:
            if deployment.queue and deployment.failure is not None and not deployment.replicas:
                self._fail_queue_failed(deployment)
            elif deployment.queue:
                deployment.queue.drain()

    def _set_gateways(
        self,
        gateways: tuple[GatewayRoutes, ...],
        deployments: dict[str, DeploymentState],
        affected: set[str] | None = None,
    ) -> None:
        """Per gateway, its own ModelStates over the shared deployment states: weights are normalised per
        gateway and model name, while in-flight counts and queues stay one per deployment. A model name
        whose deployments did not change (`affected`: the names whose routes did; None: all) and whose ids
        here are the very same tuple keeps its ModelState, so a change costs the same at 10,000 names."""
        by_host: dict[bytes, _GatewayView] = {}
        default: _GatewayView | None = None
        views: dict[str, tuple[GatewayRoutes, _GatewayView]] = {}
        for gateway in gateways:
            previous = self._views.get(gateway.gateway_id)
            if previous is None or affected is None:
                models = {
                    name.encode(): ModelState(name, [deployments[i] for i in ids if i in deployments])
                    for name, ids in gateway.models.items()
                }
                listing = ModelListing(gateway.models)
            else:
                old_routes, old_view = previous
                models = dict(old_view.models)
                old_models = old_routes.models
                if old_models is not gateway.models:
                    for name in old_models.keys() - gateway.models.keys():
                        models.pop(name.encode(), None)
                    for name, ids in gateway.models.items():
                        if old_models.get(name) is not ids or name in affected:
                            models[name.encode()] = ModelState(name, [deployments[i] for i in ids if i in deployments])
                else:
                    for name in affected & gateway.models.keys():
                        ids = gateway.models[name]
                        models[name.encode()] = ModelState(name, [deployments[i] for i in ids if i in deployments])
                if old_models.keys() == gateway.models.keys():
                    listing = old_view.listing
                else:
                    listing = ModelListing(gateway.models)
            header = gateway.model_header.encode() if gateway.model_header else self.model_header
            keys = None if gateway.keys is None else dict(gateway.keys)
            view = _GatewayView(gateway.gateway_id, models, header, listing, keys)
            views[gateway.gateway_id] = (gateway, view)
            for host in gateway.hosts:
                by_host[host.lower().encode()] = view
            if gateway.gateway_id == "default":
                default = view
        self._by_host, self._default_view, self._views = by_host, default, views
        # A gateway's own key is never passed on to replicas.
        keyed = self.api_keys is not None or any(g.keys is not None for g in gateways)
        self.limiter.forget({h for g in gateways for h in g.keys or ()})
        self.dropped_headers = HOP_BY_HOP | {b"authorization"} if keyed else HOP_BY_HOP

    def _retire_usage(self, deployment: DeploymentState) -> None:
        """A removed deployment's usage stays counted for its gateways and keys (under RETIRED_USAGE_ID), so
        their totals never go back. Responses still in flight on it add to its own counters, moved here
        when the next one is removed."""
        if not deployment.key_usage and not deployment.gateway_usage:
            return
        retired = self._retired
        for key, usage in deployment.key_usage.items():
            retired.key_usage.setdefault(key, Usage()).add(usage)
        for gateway_id, usage in deployment.gateway_usage.items():
            retired.gateway_usage.setdefault(gateway_id, Usage()).add(usage)
        deployment.key_usage, deployment.gateway_usage = {}, {}
        retired.usage_version += 1

    def _view(self, request: IncomingRequest) -> _GatewayView | None:
        return self._view_for(request.headers)

    def _view_for(self, headers: list[tuple[bytes, bytes]]) -> _GatewayView | None:
        """The gateway resource a request is for, by its Host header (port ignored); None: no resources."""
        if not self._by_host and self._default_view is None:
            return None
        host = next((value for name, value in headers if name == b"host"), b"")
        name = host.rsplit(b":", 1)[0] if not host.endswith(b"]") else host
        return self._by_host.get(name.lower()) or self._default_view or _NO_GATEWAY

    def load_snapshot(self) -> Mapping[str, DeploymentLoad]:
        """Each deployment's load now: a read-only view that every call brings up to date (copy it to keep
        one second's answers). Work in proportion to what changed: only deployments touched since the last
        call (a request, an error, usage, their replicas) or still inside their averaging window (traffic in
        the last second) are recomputed; a deployment at rest keeps last second's answer at no cost."""
        now = time.monotonic()
        loads, deployments, touched = self._loads, self._deployments, self._touched
        moving = []  # still inside their averaging window: recomputed next second with no event
        for deployment_id in touched:
            deployment = deployments.get(deployment_id)
            if deployment is None:  # removed (set_routes drops its answer too)
                loads.pop(deployment_id, None)
                continue
            loads[deployment_id] = self._load(deployment, now)
            if not deployment.meter.quiet(now):
                moving.append(deployment_id)
        # One set, shared with every DeploymentState (they add to it): cleared in place, never replaced.
        touched.clear()
        touched.update(moving)
        retired = self._retired
        if retired.usage_version != self._retired_version:
            self._retired_version = retired.usage_version
            if retired.gateway_usage:
                loads[RETIRED_USAGE_ID] = DeploymentLoad(0, 0, {}, 0, {}, 0.0, 0.0, *_usage_copy(retired))
        return self._loads_view

    def _load(self, deployment: DeploymentState, now: float) -> DeploymentLoad:
        key_usage, gateway_usage = _usage_copy(deployment)
        errors = dict(deployment.errors)
        if (
            not deployment.replicas
            and not deployment.in_flight
            and not deployment.queue
            and deployment.meter.quiet(now)
        ):
            return DeploymentLoad(0, 0, {}, deployment.requests_total, errors, 0.0, 0.0, key_usage, gateway_usage)
        load_average, queued_average = deployment.meter.averages(now)
        per_replica = {r.replica_id: r.in_flight for r in deployment.replicas}
        corrections = {r.replica_id: n for r in deployment.replicas if (n := r.cache_feedback.corrections)}
        for replica in self._draining.values():
            if replica.deployment is deployment:
                per_replica[replica.replica_id] = replica.in_flight
        return DeploymentLoad(
            in_flight=deployment.in_flight,
            queued=len(deployment.queue),
            per_replica_in_flight=per_replica,
            requests_total=deployment.requests_total,
            errors=errors,
            load_average=load_average,
            queued_average=queued_average,
            key_usage=key_usage,
            gateway_usage=gateway_usage,
            prefix_corrections=corrections,
        )

    def in_flight(self, replica_id: str) -> int:
        replica = self._replicas.get(replica_id) or self._draining.get(replica_id)
        return replica.in_flight if replica is not None else 0

    # ---- request handling (called by ClientConnection) ------------------------------------------
    def accepts_headers(self, headers: list[tuple[bytes, bytes]]) -> bool:
        view = self._view_for(headers)
        if view is not None and view.keys is not None:  # a gateway with its own keys (or token): only those
            return _key_hash(headers) in view.keys  # "" (no bearer key) is never a hash
        keys = self.api_keys
        if keys is None:
            return True
        for name, value in headers:
            if name == b"authorization":
                return keys.accepts(value)
        return False

    def _needs_key(self, request: IncomingRequest) -> bool:
        """Whether the gateway this request's Host selects asks for an API key (for its OpenAPI document)."""
        view = self._view(request)
        return (view is not None and view.keys is not None) or self.api_keys is not None

    def connection_opened(self, client: ClientConnection) -> None:
        self._clients.add(client)

    def connection_closed(self, client: ClientConnection) -> None:
        self._clients.discard(client)

    def handle(self, client: ClientConnection, request: IncomingRequest) -> None:
        keep_alive = request.keep_alive
        path = request.path
        model: str | None = None
        if path.startswith(b"/v1/"):
            suffix = path[3:]
        else:
            slash = path.find(b"/", 1)
            if slash > 1 and path.startswith(b"/v1/", slash):
                model = unquote(path[1:slash].decode("latin-1"))
                suffix = path[slash + 3 :]
            elif path in (b"/health", b"/healthz", OPENAPI_PATH) and request.method != b"GET":
                client.respond(_method_not_allowed("GET", keep_alive), keep_alive)
                return
            elif path in (b"/health", b"/healthz"):
                client.respond(json_response(200, {"status": "ok"}, keep_alive=keep_alive), keep_alive)
                return
            elif path == OPENAPI_PATH:
                document = _openapi_document(self._needs_key(request))
                client.respond(_json_bytes_response(document, keep_alive), keep_alive)
                return
            else:
                client.respond(_not_found_route(path, keep_alive), keep_alive)
                return
        if not self.accepts_headers(request.headers):
            _reply_error(
                client,
                request,
                401,
                "Incorrect or missing API key: send `Authorization: Bearer <key>` with a key this gateway accepts",
                "invalid_request_error",
                "invalid_api_key",
            )
            return
        if self._holding:
            self._held.append((client, request, time.monotonic()))
            return
        view = self._view(request)
        grant: KeyGrant | None = None
        key_hash = ""
        if view is not None and view.keys is not None:
            key_hash = _key_hash(request.headers)
            grant = view.keys.get(key_hash)
        models = self._models if view is None else view.models
        if suffix == b"/models":
            if request.method != b"GET":
                client.respond(_method_not_allowed("GET", keep_alive), keep_alive)
                return
            client.respond(self._list_models(model, request, view), keep_alive)
            return
        try:
            route = forwarded_route(suffix)
        except PathRefused:
            message = "The path has '.' or '..' segments; send the route itself, e.g. /v1/chat/completions"
            _reply_error(client, request, 400, message, "invalid_request_error", "invalid_path")
            return
        if route is None:
            client.respond(_not_found_route(path, keep_alive), keep_alive)
            return
        suffix = route
        if request.method != b"POST":
            client.respond(_method_not_allowed("POST", keep_alive), keep_alive)
            return
        # Per-key limits count the requests meant for a model (not /v1/models, nor refused paths).
        if grant is not None and (grant.requests_per_minute is not None or grant.tokens_per_minute is not None):
            refusal = self.limiter.admit(key_hash, grant.requests_per_minute, time.monotonic(), grant.tokens_per_minute)
            if refusal is not None:
                if refusal.limit == TOKENS:
                    what = f"{grant.tokens_per_minute} tokens per minute (prompt + completion)"
                else:
                    what = f"{grant.requests_per_minute} requests per minute"
                _reply_error(
                    client,
                    request,
                    429,
                    f"This API key's limit of {what} is used up; retry in {refusal.retry_after_s} s",
                    "rate_limit_error",
                    "rate_limit_exceeded",
                    retry_after_s=refusal.retry_after_s,
                )
                return
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            _reply_error(
                client, request, 400, "The request body is not valid JSON", "invalid_request_error", "invalid_json"
            )
            return
        if model is None:
            model = self._model_from_header(request, view)
        if model is None and isinstance(body, dict):
            body_model = body.get("model")
            model = body_model if isinstance(body_model, str) else None
        if model is None:
            _reply_error(
                client, request, 400, "You must provide a model parameter", "invalid_request_error", None, param="model"
            )
            return
        model_state = models.get(model.encode())
        if model_state is None:
            client.respond(model_not_found(model, keep_alive=keep_alive), keep_alive)
            return
        deployment = model_state.pick_deployment()
        if deployment is None:
            message = f"The model `{model}` has no deployment in rotation (all weights are 0)"
            _reply_error(
                client,
                request,
                503,
                message,
                "server_error",
                "no_deployment_in_rotation",
                retry_after_s=self.retry_after_s,
            )
            return
        if deployment.failure is not None and not deployment.replicas:
            deployment = _healthy_sibling(model_state, deployment)
            if deployment.failure is not None and not deployment.replicas:
                deployment.requests_total += 1
                deployment.count_error("deployment_failed")
                _reply_error(client, request, 503, _failed_message(deployment), "server_error", "deployment_failed")
                # The controller still hears of the demand: it retries the start on its back-off, so the
                # deployment recovers by itself once its cause is fixed (weights uploaded).
                self.tasks.notify(self.on_demand, deployment.deployment_id)
                return
        elif not deployment.replicas and len(model_state.deployments) > 1:
            # Waking from zero while a sibling of the same model serves: its share goes to the sibling
            # until it is ready (it is still woken), instead of waiting out a cold start.
            sibling = _serving_sibling(model_state, deployment)
            if sibling is not None:
                self.tasks.notify(self.on_demand, deployment.deployment_id)
                deployment = sibling
        deployment.requests_total += 1
        deployment.touch()
        exchange = Exchange(self.upstreams, client, request, deployment, suffix + request.query, self.dropped_headers)
        client.exchange = exchange
        if view is not None and view.gateway_id:
            key_id = grant.key_id if grant is not None else NO_KEY_ID
            exchange.account = _count_request(deployment, view.gateway_id, key_id, key_hash)
        if deployment.prefix_policy is not None and len(deployment.replicas) > 1:  # one replica: no choice
            exchange.prefix = prompt_chunks(request.body, body)
        # Started at once, queued (FIFO) or refused 429. A request that waits tells the controller: at zero
        # that wakes the deployment; behind busy replicas its policy may wake a parked replica at once.
        if deployment.queue.admit(exchange):
            self.tasks.notify(self.on_demand, deployment.deployment_id)

    def _model_from_header(self, request: IncomingRequest, view: _GatewayView | None = None) -> str | None:
        value = _header(request, self.model_header if view is None else view.model_header)
        return (value.decode("latin-1").strip() or None) if value is not None else None

    def _list_models(self, model: str | None, request: IncomingRequest, view: _GatewayView | None = None) -> bytes:
        keep_alive = request.keep_alive
        if model is None:
            return _json_bytes_response((self._models_list if view is None else view.listing).body(), keep_alive)
        if model.encode() not in (self._models if view is None else view.models):
            return model_not_found(model, keep_alive=keep_alive)
        return json_response(200, {"object": "list", "data": [_model_card(model)]}, keep_alive=keep_alive)

    @property
    def upstream_timeouts(self) -> int:
        """Requests cut off by the upstream idle timeout since the start."""
        return self.replica_book.upstream_timeouts

    # ---- called by exchanges --------------------------------------------------------------------
    def response_tokens(self, account: Account, prompt_tokens: int, completion_tokens: int) -> None:
        """A response ended with this usage: it counts for its key, its gateway and the key's token limit."""
        deployment, gateway_id, key_id, key_hash = account
        for usage in (deployment.key_usage[gateway_id, key_id], deployment.gateway_usage[gateway_id]):
            usage.prompt_tokens += prompt_tokens
            usage.completion_tokens += completion_tokens
        deployment.usage_version += 1
        deployment.touch()
        if key_hash:
            self.limiter.record_tokens(key_hash, prompt_tokens + completion_tokens, time.monotonic())

    # ---- internals ------------------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        """About once a second: re-read a changed API keys file, and sweep the requests in flight for
        silent replicas (a counter per upstream read keeps the hot path free of timers)."""
        timeout_s = self.upstream_idle_timeout_s
        interval = min(1.0, self.limits.head_timeout_s / 4, self.limits.idle_timeout_s / 4)
        if timeout_s:
            interval = min(interval, timeout_s / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now_mono = time.monotonic()
            for client in list(self._clients):
                client.check_timeouts(now_mono)
            if self._held:
                self._release_held(
                    now_mono - self.hold_timeout_s,
                    f"the gateway has had no routing table from its controller for {self.hold_timeout_s:g}s",
                )
            if self.api_keys is not None:
                try:
                    self.api_keys.reload_if_changed()
                except Exception:  # revocations must keep working: log and go on
                    log.exception("gateway API keys: reload failed")
            if timeout_s:
                now = loop.time()
                for client in list(self._clients):
                    exchange = client.exchange
                    if exchange is not None:
                        try:
                            exchange.check_idle(now, timeout_s)
                        except Exception:
                            log.exception("upstream idle check failed")

    def _release_held(self, held_before: float, why: str) -> None:
        """Answer held requests that arrived before `held_before` 503 (no controller yet); keep the rest."""
        kept: list[tuple[ClientConnection, IncomingRequest, float]] = []
        for client, request, since in self._held:
            if client.closed:
                continue
            if since >= held_before:
                kept.append((client, request, since))
                continue
            message = f"Request not served: {why}; retry later"
            _reply_error(client, request, 503, message, "server_error", "unavailable", retry_after_s=self.retry_after_s)
        self._held = kept

    def _fail_queue(self, deployment: DeploymentState, why: str) -> None:
        deployment.queue.fail_all(f"Request not served: {why}", "unavailable", self.retry_after_s)

    def _fail_queue_failed(self, deployment: DeploymentState) -> None:
        """Queued requests of a deployment that turned out to be failing: its condition, at once."""
        deployment.queue.fail_all(_failed_message(deployment), "deployment_failed", None)


def _reply_error(
    client: ClientConnection,
    request: IncomingRequest,
    status: int,
    message: str,
    error_type: str,
    code: str | None,
    *,
    param: str | None = None,
    retry_after_s: int | None = None,
) -> None:
    keep_alive = request.keep_alive
    response = error_response(
        status, message, error_type, code, param=param, keep_alive=keep_alive, retry_after_s=retry_after_s
    )
    client.respond(response, keep_alive)


def _healthy_sibling(model: ModelState, failed: DeploymentState) -> DeploymentState:
    """Another deployment of the same model in rotation that is not failing, else `failed` itself."""
    for other in model.deployments:
        if other is not failed and other.weight > 0 and (other.failure is None or other.replicas):
            return other
    return failed


def _serving_sibling(model: ModelState, waking: DeploymentState) -> DeploymentState | None:
    """A deployment of the same model in rotation with a replica that has room, if any."""
    for other in model.deployments:
        if other is not waking and other.weight > 0 and other.replicas and other.pick_replica() is not None:
            return other
    return None


def _failed_message(deployment: DeploymentState) -> str:
    return (
        f"Deployment '{deployment.deployment_id}' of model `{deployment.model_name}` is failing: {deployment.failure}. "
        "See `tide get` for its conditions and `tide logs` for its replicas."
    )


class ModelListing:
    """The /v1/models body of some model names, encoded when first asked for, not on each route push: at
    10,000 names a push that adds one would re-encode them all, and a seed of creates pushes hundreds of
    times between two listings. `names` is the pushed mapping, never changed after the push (a push brings
    a new one)."""

    def __init__(self, names: Mapping[str, object]) -> None:
        self._names = names
        self._body: bytes | None = None

    def body(self) -> bytes:
        if self._body is None:
            self._body = orjson.dumps({"object": "list", "data": [_model_card(name) for name in self._names]})
        return self._body


@dataclass(frozen=True)
class _GatewayView:
    gateway_id: str
    models: dict[bytes, ModelState]
    model_header: bytes
    listing: ModelListing  # the /v1/models body
    keys: dict[str, KeyGrant] | None = None  # the credentials it accepts, by hash; None: the process-wide rule


# What an exchange's usage counts for: its deployment, gateway id, key id and key hash ("" without one).
Account = tuple[DeploymentState, str, str, str]


def _usage_copy(deployment: DeploymentState) -> tuple[dict[tuple[str, str], Usage], dict[str, Usage]]:
    return (
        {k: replace(u) for k, u in deployment.key_usage.items()},
        {g: replace(u) for g, u in deployment.gateway_usage.items()},
    )


def _count_request(deployment: DeploymentState, gateway_id: str, key_id: str, key_hash: str) -> Account:
    """A request routed to `deployment` through this gateway and key: counted for both, now."""
    usage = deployment.key_usage.get((gateway_id, key_id))
    if usage is None:
        usage = deployment.key_usage[gateway_id, key_id] = Usage()
    usage.requests += 1
    total = deployment.gateway_usage.get(gateway_id)
    if total is None:
        total = deployment.gateway_usage[gateway_id] = Usage()
    total.requests += 1
    deployment.usage_version += 1
    deployment.touch()
    return deployment, gateway_id, key_id, key_hash


_NO_GATEWAY = _GatewayView("", {}, b"x-tide-model", ModelListing({}))


def _key_hash(headers: list[tuple[bytes, bytes]]) -> str:
    """SHA-256 (hex) of the bearer key in `Authorization`; "" without one."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, key = value.partition(b" ")
            return hashlib.sha256(key.strip()).hexdigest() if scheme.lower() == b"bearer" else ""
    return ""


def _header(request: IncomingRequest, name: bytes) -> bytes | None:
    for header, value in request.headers:
        if header == name:
            return value
    return None


def _method_not_allowed(allowed: str, keep_alive: bool) -> bytes:
    """405 with the `Allow` header naming the one method the route takes."""
    payload = error_payload(f"Method not allowed; this route takes {allowed}", "invalid_request_error", None)
    return json_response(405, payload, keep_alive=keep_alive, extra_headers=(("allow", allowed),))


@functools.cache
def _openapi_document(secured: bool) -> bytes:
    return orjson.dumps(openapi_document(secured))


def _model_card(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tide"}


def _json_bytes_response(body: bytes, keep_alive: bool) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(body)
    return head + (b"\r\n" if keep_alive else b"connection: close\r\n\r\n") + body


def _not_found_route(path: bytes, keep_alive: bool) -> bytes:
    routes = ", ".join(sorted(route.decode() for route in FORWARDED_ROUTES))
    message = (
        f"Unknown route {path.decode('latin-1')[:200]}; the gateway serves /v1/models and, under /v1 or "
        f"/{{model}}/v1, {routes}"
    )
    return error_response(404, message, "invalid_request_error", "not_found", keep_alive=keep_alive)
