"""The management REST API (`/v1alpha1/inference`): deployments CRUD, parameters, logs.

Every `/v1alpha1` route needs `Authorization: Bearer <token>`. Errors are JSON in API.md's shape:
`{"error": {"code", "message", "field"}}`. Desired state is written to the store before the controller
is woken to act on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from tide.api.body import read_json_body
from tide.api.claims import ClaimsContext, claims_router
from tide.api.dashboard import mount_dashboard
from tide.api.docs_page import mount_docs
from tide.api.envelope import deployment_body, deployments_body, deprecation_headers
from tide.api.errors import BASE, ApiError
from tide.api.gateways import GatewaysContext, check_gateway_ids, gateways_router
from tide.api.openapi import install as install_openapi
from tide.api.paging import decode_token, encode_token, page_size
from tide.backends.logfiles import LogText
from tide.errors import FieldError
from tide.spec import Catalog, deployment_to_dict, parse_deployment, parse_name
from tide.store import Conflict, DeploymentRecord, NotFound, Store

# (deployment id, tail lines, replica id -> offset or None) -> replica id -> its text and end offset
ReplicaLogs = Callable[[str, int, Mapping[str, int] | None], Mapping[str, LogText]]


@dataclass
class ApiContext:
    store: Store
    catalog: Callable[[], Catalog]
    token: str
    wake_controller: Callable[[], None]
    logs: ReplicaLogs
    parameters: Callable[[], dict[str, Any]]
    clock: Callable[[], float] = time.time
    claims: ClaimsContext | None = None  # capacity claims and usage routes, when the server has them
    metrics: Callable[[], bytes] | None = None  # Prometheus exposition of the control plane
    gateway_url: str | None = None  # the gateway process's address, for gateways' status.endpoints


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Tide management API",
        version="v1alpha1",
        description="Deploy models from a bucket, serve them behind an OpenAI-compatible gateway, autoscale them.",
        docs_url=None,  # tide.api.docs_page serves /docs from local files
        redoc_url=None,
    )
    claims_ctx = ctx.claims

    def claim_choices() -> tuple[list[str], list[str]]:
        inventory = claims_ctx.inventory() if claims_ctx is not None else None
        return ([t.id for t in inventory.types], inventory.zones()) if inventory is not None else ([], [])

    install_openapi(app, ctx.catalog, lambda: list(ctx.parameters().get("zoneInstanceTypes") or {}), claim_choices)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(FieldError)
    async def _field_error(_request: Request, exc: FieldError) -> JSONResponse:
        return ApiError(400, exc.code, str(exc), exc.field).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return ApiError(400, "INVALID_ARGUMENT", f"{field}: {first.get('msg', 'invalid request')}", field).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "ERROR")
        response = ApiError(exc.status_code, code, str(exc.detail)).response()
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the first route's methods only; the path may have more
            response.headers["allow"] = ", ".join(allowed_methods(app, request.scope))
        return response

    def require_token(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(401, "UNAUTHENTICATED", "missing bearer token: send 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(given.strip().encode(), ctx.token.encode()):
            raise ApiError(401, "UNAUTHENTICATED", "invalid bearer token")

    auth = [Depends(require_token)]

    async def read_json(request: Request) -> Any:
        return await read_json_body(request)

    async def find(deployment_id: str) -> DeploymentRecord:
        """By id; or by name when exactly one deployment has it (what a CLI user types)."""
        try:
            return await asyncio.to_thread(ctx.store.get_deployment, deployment_id)
        except NotFound:
            pass
        named = await asyncio.to_thread(ctx.store.deployments_named, deployment_id)
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            ids = ", ".join(r.id for r in named)
            raise ApiError(409, "AMBIGUOUS", f"several deployments are named {deployment_id!r} ({ids}); use an id")
        raise ApiError(404, "NOT_FOUND", f"deployment {deployment_id!r} not found")

    async def replayed_create(idempotency: tuple[str, str]) -> dict[str, Any] | None:
        """The deployment an earlier create with this Idempotency-Key made, as it is now; None if the key
        is new. The same key with a different body is refused: it is a client bug, not a retry."""
        key, request_hash = idempotency
        earlier = await asyncio.to_thread(ctx.store.idempotent_create, key, ctx.clock())
        if earlier is None:
            return None
        if earlier.request_hash != request_hash:
            raise ApiError(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                f"Idempotency-Key {key!r} was used for a different request (it created {earlier.deployment_id!r}); "
                "use a new key for a new deployment",
                "Idempotency-Key",
            )
        try:
            return deployment_body(await asyncio.to_thread(ctx.store.get_deployment, earlier.deployment_id))
        except NotFound:
            raise ApiError(
                409, "ALREADY_EXISTS", f"Idempotency-Key {key!r} created {earlier.deployment_id!r}, since deleted", "id"
            ) from None

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        body = ctx.metrics() if ctx.metrics is not None else b""
        return Response(body, media_type="text/plain; version=0.0.4")

    @app.get(f"{BASE}/deployments", dependencies=auth)
    async def list_deployments(
        page_size_: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        """One page in creation order (docs/API-NOTES.md: paging); `nextPageToken` when more follow."""
        size, after = page_size(page_size_), decode_token(page_token)
        records, cursor = await asyncio.to_thread(ctx.store.list_deployments_page, size, after)
        page: dict[str, Any] = deployments_body(records)
        if (token := encode_token(cursor)) is not None:
            page["nextPageToken"] = token
        return page

    @app.get(f"{BASE}/deployments/parameters", dependencies=auth)
    async def parameters() -> dict[str, Any]:
        return ctx.parameters()

    @app.post(f"{BASE}/deployments", dependencies=auth, status_code=201)
    async def create_deployment(request: Request, response: Response) -> dict[str, Any]:
        raw = await read_json(request)
        spec = parse_deployment(raw, ctx.catalog())
        await asyncio.to_thread(check_gateway_ids, ctx.store, spec.gateway_ids)
        response.headers.update(deprecation_headers(raw))
        key = request.headers.get("idempotency-key")
        idempotency: tuple[str, str] | None = None
        if key is not None:
            if not 1 <= len(key) <= 255:
                raise ApiError(400, "INVALID_ARGUMENT", "Idempotency-Key must be 1-255 characters", "Idempotency-Key")
            idempotency = (key, hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest())
            replay = await replayed_create(idempotency)
            if replay is not None:
                response.headers["idempotent-replayed"] = "true"
                return replay
        wanted_id = raw.get("id")
        if wanted_id is not None:
            deployment_id = parse_name(wanted_id, "id")
        elif not await asyncio.to_thread(ctx.store.deployment_exists, spec.name):
            deployment_id = spec.name
        else:
            deployment_id = f"{spec.name[:57]}-{secrets.token_hex(2)}"
        try:
            record = await asyncio.to_thread(
                ctx.store.create_deployment, deployment_id, deployment_to_dict(spec), ctx.clock(), idempotency
            )
        except Conflict as exc:
            replay = await replayed_create(idempotency) if idempotency is not None else None
            if replay is not None:  # a concurrent retry with the same key won the race
                response.headers["idempotent-replayed"] = "true"
                return replay
            raise ApiError(409, "ALREADY_EXISTS", str(exc), "id") from None
        ctx.wake_controller()
        return deployment_body(record)

    @app.get(f"{BASE}/deployments/{{deployment_id}}", dependencies=auth)
    async def get_deployment(deployment_id: str) -> dict[str, Any]:
        return deployment_body(await find(deployment_id))

    @app.patch(f"{BASE}/deployments/{{deployment_id}}", dependencies=auth)
    async def update_deployment(deployment_id: str, request: Request, response: Response) -> dict[str, Any]:
        record = await find(deployment_id)
        raw = await read_json(request)
        if isinstance(raw, dict) and raw.get("id") not in (None, record.id):
            raise ApiError(400, "INVALID_ARGUMENT", "id cannot be changed", "id")
        spec = parse_deployment(raw, ctx.catalog())
        await asyncio.to_thread(check_gateway_ids, ctx.store, spec.gateway_ids)
        response.headers.update(deprecation_headers(raw))
        old_model_name = (record.spec.get("model") or {}).get("name") or record.name
        if spec.routing_name != old_model_name:
            # Replicas serve the model under its name: renaming them in place would 404 every request
            # until new ones are up. A rename is a new deployment.
            raise ApiError(
                400,
                "INVALID_ARGUMENT",
                f"model.name cannot be changed (from {old_model_name!r} to {spec.routing_name!r}): create a "
                f"deployment with model.name {spec.routing_name!r}, wait until it is READY, then delete {record.id!r}",
                "model.name",
            )
        try:
            updated = await asyncio.to_thread(ctx.store.update_spec, record.id, deployment_to_dict(spec), ctx.clock())
        except Conflict as exc:
            raise ApiError(409, "FAILED_PRECONDITION", str(exc)) from None
        ctx.wake_controller()
        return deployment_body(updated)

    @app.delete(f"{BASE}/deployments/{{deployment_id}}", dependencies=auth)
    async def delete_deployment(deployment_id: str) -> dict[str, Any]:
        record = await find(deployment_id)
        updated = await asyncio.to_thread(ctx.store.mark_deleting, record.id, ctx.clock())
        ctx.wake_controller()
        return deployment_body(updated)

    @app.get(f"{BASE}/deployments/{{deployment_id}}/logs", dependencies=auth)
    async def deployment_logs(
        deployment_id: str, tail: int = 200, follow: bool = False, after: Annotated[list[str] | None, Query()] = None
    ) -> dict[str, Any]:
        """The last `tail` lines of each replica's log; with `follow=true`, what each replica wrote past
        the offsets in `after` (`REPLICA:OFFSET`, repeated; the `offsets` of the previous answer), and
        replicas not listed from their start. `offsets` says where to continue."""
        record = await find(deployment_id)
        tail = max(1, min(tail, 10_000))
        offsets = _log_offsets(after or []) if follow else None
        logs = await asyncio.to_thread(ctx.logs, record.id, tail, offsets)
        return {
            "id": record.id,
            "replicas": {replica_id: log.text for replica_id, log in logs.items()},
            "offsets": {replica_id: log.end for replica_id, log in logs.items()},
        }

    if ctx.claims is not None:
        app.include_router(claims_router(ctx.claims, auth))
    gateways = GatewaysContext(
        store=ctx.store,
        zones=lambda: list(ctx.parameters().get("zoneInstanceTypes") or {}),
        clock=ctx.clock,
        wake_controller=ctx.wake_controller,
        gateway_url=ctx.gateway_url,
    )
    app.include_router(gateways_router(gateways, auth))
    mount_dashboard(app)
    mount_docs(app, app.openapi)
    return app


def allowed_methods(app: FastAPI, scope: Mapping[str, Any]) -> list[str]:
    """Every method some route of `app` takes on the request's path (for a 405's Allow header)."""
    path = scope.get("path", "")
    matching = [r for r in app.router.routes if isinstance(r, APIRoute) and r.path_regex.match(path)]
    literal = [r for r in matching if r.path == path]  # `/deployments/parameters`, not `/deployments/{id}`
    return sorted({method for route in literal or matching for method in route.methods or ()})


def valid_token(token: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9._~+/=-]{8,}", token))


def _log_offsets(after: list[str]) -> dict[str, int]:
    offsets = {}
    for item in after:
        replica_id, _, offset = item.rpartition(":")
        if not replica_id or not re.fullmatch(r"[0-9]+", offset):  # isdigit() would take "²", int() would not
            raise ApiError(400, "INVALID_ARGUMENT", f"after: {item!r} is not REPLICA:OFFSET", "after")
        offsets[replica_id] = int(offset)
    return offsets
