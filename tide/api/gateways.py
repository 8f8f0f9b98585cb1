"""`/gateways`: create, list, get, update (the whole spec), delete, and `parameters` (zones).

Deployments name gateways in `gatewayIds`; a gateway that deployments still name cannot be deleted (409
listing them), and the default gateway cannot be deleted at all (update it instead).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, params

from tide.api.envelope import gateway_body, gateway_resource, key_json
from tide.api.errors import BASE, ApiError
from tide.errors import FieldError
from tide.spec import DEFAULT_GATEWAY_ID, parse_name
from tide.spec.gateway import deployment_zones, gateway_hosts, gateway_to_dict, parse_gateway
from tide.store import Conflict, NotFound, Store
from tide.store.gateways import GatewayRecord, GatewayStore, KeyStore

MAX_KEY_LIMIT = 1_000_000_000  # a key's per-minute limits; larger would not fit the store's integer column


@dataclass
class GatewaysContext:
    store: Store
    zones: Callable[[], Sequence[str]]
    clock: Callable[[], float]
    wake_controller: Callable[[], None]
    gateway_url: str | None = None  # where the gateway process listens, e.g. http://127.0.0.1:8080


def endpoints(record: GatewayRecord, gateway_url: str | None) -> list[str]:
    """The base URLs clients use: each host name of the gateway on the gateway process's port; the
    default gateway also at the plain address (a Host no gateway claims lands there)."""
    if gateway_url is None:
        return []
    url = urlsplit(gateway_url)
    port = f":{url.port}" if url.port else ""
    spec = parse_gateway(record.spec)
    out = [f"{url.scheme}://{host}{port}/v1" for host in gateway_hosts(record.id, spec)]
    if record.id == DEFAULT_GATEWAY_ID:
        out.insert(0, f"{gateway_url.rstrip('/')}/v1")
    return out


def gateways_router(ctx: GatewaysContext, dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    router = APIRouter(prefix=BASE, dependencies=list(dependencies))
    gateways = GatewayStore(ctx.store.engine)

    def body(record: GatewayRecord) -> dict[str, Any]:
        return gateway_body(record, endpoints(record, ctx.gateway_url))

    async def read_json(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise ApiError(400, "INVALID_ARGUMENT", "the request body must be a JSON object", "body") from None

    def validated(raw: Any) -> dict[str, Any]:
        return gateway_to_dict(parse_gateway(raw, ctx.zones()))

    async def find(gateway_id: str) -> GatewayRecord:
        try:
            return await asyncio.to_thread(gateways.get_gateway, gateway_id)
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"gateway {gateway_id!r} not found") from None

    @router.get("/gateways")
    async def list_gateways() -> dict[str, Any]:
        records = await asyncio.to_thread(gateways.list_gateways)
        return {"gateways": [gateway_resource(r, endpoints(r, ctx.gateway_url)) for r in records]}

    @router.get("/gateways/parameters")
    async def gateway_parameters() -> dict[str, Any]:
        return {"zones": sorted(ctx.zones())}

    @router.post("/gateways", status_code=201)
    async def create_gateway(request: Request) -> dict[str, Any]:
        raw = await read_json(request)
        spec = validated(raw)
        wanted = raw.get("id") if isinstance(raw, dict) else None
        gateway_id = parse_name(wanted, "id") if wanted is not None else f"{spec['name'][:57]}-{secrets.token_hex(2)}"
        if wanted is None and not await _taken(gateways, spec["name"]):
            gateway_id = spec["name"]
        try:
            record = await asyncio.to_thread(gateways.create_gateway, gateway_id, spec, ctx.clock())
        except Conflict as exc:
            raise ApiError(409, "ALREADY_EXISTS", str(exc), "id") from None
        ctx.wake_controller()
        return body(record)

    @router.get("/gateways/{gateway_id}")
    async def get_gateway(gateway_id: str) -> dict[str, Any]:
        return body(await find(gateway_id))

    @router.patch("/gateways/{gateway_id}")
    async def update_gateway(gateway_id: str, request: Request) -> dict[str, Any]:
        record = await find(gateway_id)
        raw = await read_json(request)
        if isinstance(raw, dict) and raw.get("id") not in (None, record.id):
            raise ApiError(400, "INVALID_ARGUMENT", "id cannot be changed", "id")
        spec = validated(raw)
        await asyncio.to_thread(_check_new_zones, ctx.store, gateways, record.id, tuple(spec["zones"]))
        try:
            updated = await asyncio.to_thread(gateways.update_gateway, record.id, spec, ctx.clock())
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"gateway {gateway_id!r} not found") from None
        ctx.wake_controller()
        return body(updated)

    @router.delete("/gateways/{gateway_id}")
    async def delete_gateway(gateway_id: str) -> dict[str, Any]:
        record = await find(gateway_id)
        if record.id == DEFAULT_GATEWAY_ID:
            raise ApiError(409, "FAILED_PRECONDITION", "the default gateway cannot be deleted; update it instead")
        deployments = await asyncio.to_thread(ctx.store.list_deployments)
        users = [d.id for d in deployments if record.id in (d.spec.get("gatewayIds") or [])]
        if users:
            raise ApiError(
                409,
                "FAILED_PRECONDITION",
                f"gateway {record.id!r} still serves deployments {', '.join(users)}: change their gatewayIds first",
            )
        try:
            removed = await asyncio.to_thread(gateways.delete_gateway, record.id)
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"gateway {gateway_id!r} not found") from None
        ctx.wake_controller()
        return body(removed)

    keys = KeyStore(ctx.store.engine)

    @router.post("/gateways/{gateway_id}/keys", status_code=201)
    async def create_key(gateway_id: str, request: Request) -> dict[str, Any]:
        """A new API key for an apiKeyAuth gateway. `key` is in this answer only: it is stored hashed."""
        record = await find(gateway_id)
        raw = await read_json(request) if await request.body() else {}
        if not isinstance(raw, dict) or set(raw) - {"name", *KEY_LIMITS}:
            raise ApiError(
                400, "INVALID_ARGUMENT", "the body may hold name, requestsPerMinute and tokensPerMinute", "body"
            )
        name = raw.get("name")
        name = "" if name is None else name  # null is absent; 0 or false are not labels
        if not isinstance(name, str) or len(name) > 63:
            raise ApiError(400, "INVALID_ARGUMENT", "name: a label of at most 63 characters", "name")
        limits = [_whole(raw.get(field)) for field in KEY_LIMITS]
        for field, limit in zip(KEY_LIMITS, limits, strict=True):
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_KEY_LIMIT
            ):
                raise ApiError(400, "INVALID_ARGUMENT", f"{field}: a whole number from 1 to {MAX_KEY_LIMIT}", field)
        if "apiKeyAuth" not in record.spec:
            raise ApiError(
                400,
                "FAILED_PRECONDITION",
                f"gateway {record.id!r} uses coreWeaveAuth: its clients send the management API's token. "
                "API keys are for apiKeyAuth gateways (update the gateway to apiKeyAuth: {} first)",
                "gatewayId",
            )
        created, key = await asyncio.to_thread(keys.create_key, record.id, name, ctx.clock(), *limits)
        ctx.wake_controller()
        return {"apiKey": key_json(created), "key": key}

    @router.get("/gateways/{gateway_id}/keys")
    async def list_keys(gateway_id: str) -> dict[str, Any]:
        record = await find(gateway_id)
        return {"apiKeys": [key_json(k) for k in await asyncio.to_thread(keys.list_keys, record.id)]}

    @router.delete("/gateways/{gateway_id}/keys/{key_id}")
    async def revoke_key(gateway_id: str, key_id: str) -> dict[str, Any]:
        record = await find(gateway_id)
        try:
            revoked = await asyncio.to_thread(keys.revoke_key, record.id, key_id)
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"gateway {record.id!r} has no key {key_id!r}") from None
        ctx.wake_controller()
        return {"apiKey": key_json(revoked)}

    return router


KEY_LIMITS = ("requestsPerMinute", "tokensPerMinute")  # optional per-key limits, per one-minute window


def _whole(value: Any) -> Any:
    """60.0 is 60 (JSON does not tell them apart); anything else as given."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


async def _taken(gateways: GatewayStore, gateway_id: str) -> bool:
    try:
        await asyncio.to_thread(gateways.get_gateway, gateway_id)
    except NotFound:
        return False
    return True


def check_gateway_ids(store: Store, gateway_ids: Sequence[str]) -> None:
    """FieldError naming `gatewayIds[i]` when a deployment names a gateway that does not exist, or
    `gatewayIds` when its gateways' zones share none (it could run nowhere)."""
    records = {g.id: g for g in GatewayStore(store.engine).list_gateways()}
    for i, gateway_id in enumerate(gateway_ids):
        if gateway_id not in records:
            raise FieldError(
                f"gatewayIds[{i}]",
                f"gateway {gateway_id!r} does not exist; gateways: {', '.join(sorted(records))} (GET /gateways)",
            )
    deployment_zones([tuple(records[g].spec.get("zones") or ()) for g in gateway_ids])


def _check_new_zones(store: Store, gateways: GatewayStore, gateway_id: str, zones: tuple[str, ...]) -> None:
    """FieldError naming `zones` when a deployment on this gateway and another would share no zone with
    these zones (running replicas stay where they are; new ones go to the zones all its gateways allow)."""
    if not zones:
        return
    others = {g.id: tuple(g.spec.get("zones") or ()) for g in gateways.list_gateways()}
    others[gateway_id] = zones
    for deployment in store.list_deployments():
        ids = [g for g in deployment.spec.get("gatewayIds") or () if g in others]
        if gateway_id in ids:
            try:
                deployment_zones([others[g] for g in ids])
            except FieldError as error:
                raise FieldError("zones", f"deployment {deployment.id!r}: {error.message}") from None
