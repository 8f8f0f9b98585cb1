"""Capacity claims (`/capacityclaims`) and usage (`/usage`) routes of the management API.

`claims_router(ctx, dependencies)` returns an `APIRouter` to mount on the app from `create_app`, with
the app's bearer-token dependency: `app.include_router(claims_router(ctx, [Depends(require_token)]))`.
Errors are raised as `ApiError`, which that app turns into API.md's `{"error": {...}}` shape.

Claims:
- Body: the spec, `{"id"?: ..., "resources": {...}}`, or a `GET` result (`{"id", "spec": {...}, "status",
  ...}`; `status`, `createdAt`, `updatedAt` are ignored), so a read claim can be edited and re-applied.
  Unknown keys are a 400 naming them. Without `id`, one is generated (`claim-` and 8 hex digits).
- `PATCH` takes the whole spec (omitted fields go back to their defaults), like deployments.
- `status` is computed on every read: the stored claims in creation order (first come, first served)
  go through `assign_claims` over the current inventory, then `claim_status` counts them.

Usage: `GET /usage?start=&end=` (epoch seconds or ISO-8601; default the last 24 h up to now) answers
GPU-minutes per deployment, each with its replicas, billed per started minute (`gpu_minutes`). Runs still
open are counted up to now, never up to an `end` in the future. `gateways`: requests and the prompt and
completion tokens engines reported, per gateway and per API key id, since the gateways started (counters,
not windowed by `start`/`end`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, params

from tide.api.body import read_json_body
from tide.api.envelope import claim_body, claim_resource
from tide.api.errors import BASE, ApiError
from tide.api.paging import decode_token, encode_token, page_size
from tide.errors import FieldError
from tide.scheduling import (
    Inventory,
    UsageReport,
    assign_claims,
    claim_status,
    gpu_minutes,
    validate_claim,
)
from tide.spec import parse_name
from tide.store import Conflict, NotFound, Store
from tide.store.claims import ClaimRecord, ClaimStore, RunLog, claim_spec_json
from tide.timestamps import parse_instant

DEFAULT_USAGE_WINDOW_S = 24 * 3600.0

# A POST/PATCH body is either the spec itself or a GET result (the spec under "spec").
_FLAT_KEYS = {"id", "name", "resources", "status", "organizationId"}  # the hosted body; organizationId ignored
_WRAPPED_KEYS = {"id", "spec", "status", "createdAt", "updatedAt"}
_SPEC_KEYS = {"id", "name", "resources", "organizationId"}  # a GET result's spec, as it comes back


@dataclass
class ClaimsContext:
    store: Store
    inventory: Callable[[], Inventory]
    wake_controller: Callable[[], None]
    clock: Callable[[], float] = time.time
    # The gateways' request and token counts per gateway and key since they started (`/usage`'s
    # `gateways`); None where the server has no gateways to ask.
    gateway_usage: Callable[[], list[dict[str, Any]]] | None = None


def claim_statuses(records: Sequence[ClaimRecord], inventory: Inventory) -> dict[str, dict[str, int]]:
    """`{claim id: {"allocatedInstances", "pendingInstances"}}`, claims served in the order given."""
    claims = [record.to_claim() for record in records]
    assigned = assign_claims(claims, inventory)
    statuses: dict[str, dict[str, int]] = {}
    for claim in claims:
        status = claim_status(claim, assigned)
        statuses[claim.id] = {"allocatedInstances": status.allocated, "pendingInstances": status.pending}
    return statuses


PARKED_SUFFIX = "/parked"  # the usage run of a replica's parked time (tide.control.parking.parked_run_id)


def usage_json(report: UsageReport) -> dict[str, Any]:
    """Deployments (sorted by id) with their replicas; rows with no minute billed in the window are left out."""
    deployments: dict[str, dict[str, Any]] = {}
    for replica in report.replicas:
        if replica.minutes == 0:
            continue
        entry = deployments.setdefault(
            replica.deployment_id,
            {"deploymentId": replica.deployment_id, "gpuMinutes": 0, "parkedMinutes": 0, "replicas": []},
        )
        entry["gpuMinutes"] += replica.gpu_minutes
        row: dict[str, Any] = {
            "replicaId": replica.replica_id,
            "minutes": replica.minutes,
            "gpuMinutes": replica.gpu_minutes,
        }
        if replica.replica_id.endswith(PARKED_SUFFIX):  # parked time: no GPU held (tide.control.parking)
            row["parked"] = True
            entry["parkedMinutes"] += replica.minutes
        entry["replicas"].append(row)
    return {
        "start": report.start,
        "end": report.end,
        "totalGpuMinutes": report.total_gpu_minutes,
        "deployments": [deployments[d] for d in sorted(deployments)],
    }


def parse_claim_body(raw: Any) -> tuple[str | None, dict[str, Any]]:
    """(`id` or None, the spec mapping to validate) from a POST/PATCH body; ApiError naming a bad key."""
    if isinstance(raw, dict) and isinstance(raw.get("capacityClaim"), dict) and len(raw) == 1:
        raw = raw["capacityClaim"]  # a GET answer sent back as is
    if not isinstance(raw, dict):
        raise ApiError(400, "INVALID_ARGUMENT", "the request body must be a JSON object", "body")
    wrapped = "spec" in raw
    allowed = _WRAPPED_KEYS if wrapped else _FLAT_KEYS
    for key in raw:
        if key not in allowed:
            raise ApiError(
                400, "INVALID_ARGUMENT", f"{key}: unknown field; allowed: {', '.join(sorted(allowed))}", str(key)
            )
    if wrapped:
        spec = raw["spec"]
        if not isinstance(spec, dict):
            raise ApiError(400, "INVALID_ARGUMENT", "spec: must be an object with resources", "spec")
        for key in spec:
            if key not in _SPEC_KEYS:
                raise ApiError(
                    400, "INVALID_ARGUMENT", f"spec.{key}: unknown field; allowed: id, name, resources", f"spec.{key}"
                )
        spec = {k: v for k, v in spec.items() if k in ("name", "resources")}
        claim_id = raw["id"] if raw.get("id") is not None else raw["spec"].get("id")
    else:
        spec = {k: v for k, v in raw.items() if k in ("name", "resources")}
        claim_id = raw.get("id")
    if claim_id is not None:
        try:
            claim_id = parse_name(claim_id, "id")
        except FieldError as exc:
            raise ApiError(400, exc.code, str(exc), exc.field) from None
    return claim_id, spec


def usage_window(start: str | None, end: str | None, now: float) -> tuple[float, float]:
    """[start, end) from the query: each epoch seconds or ISO-8601; `end` defaults to now, `start` to 24 h
    before `end`. ApiError naming the parameter when one is malformed or the window is reversed."""
    end_s = _instant(end, "end") if end else now
    start_s = _instant(start, "start") if start else end_s - DEFAULT_USAGE_WINDOW_S
    if end_s < start_s:
        raise ApiError(400, "INVALID_ARGUMENT", f"end ({end_s}) must not be before start ({start_s})", "end")
    return start_s, end_s


def _instant(text: str, field: str) -> float:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise ApiError(400, "INVALID_ARGUMENT", f"{field}: {exc}", field) from None


def _invalid(exc: FieldError) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", str(exc), exc.field)


def claims_router(ctx: ClaimsContext, dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """The `/capacityclaims` and `/usage` routes; `dependencies` (the app's auth) guard every one."""
    router = APIRouter(prefix=BASE, dependencies=list(dependencies), tags=["capacity"])
    claims = ClaimStore(ctx.store)
    runs = RunLog(ctx.store)

    async def read_json(request: Request) -> Any:
        return await read_json_body(request)

    async def with_status(records: list[ClaimRecord]) -> list[dict[str, Any]]:
        # Status depends on every claim (first come, first served), so it is computed over all of them.
        everything = await asyncio.to_thread(claims.list_claims)
        statuses = claim_statuses(everything, ctx.inventory())
        empty = {"allocatedInstances": 0, "pendingInstances": 0}
        return [claim_resource(r, statuses.get(r.id, empty)) for r in records]

    async def find(claim_id: str) -> ClaimRecord:
        try:
            return await asyncio.to_thread(claims.get_claim, claim_id)
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"capacity claim {claim_id!r} not found") from None

    def validated(spec: dict[str, Any]) -> dict[str, Any]:
        try:
            stored = claim_spec_json(validate_claim(spec, ctx.inventory()))
        except FieldError as exc:
            raise _invalid(exc) from None
        name = spec.get("name")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 63):
            raise ApiError(400, "INVALID_ARGUMENT", "name: a string of 1-63 characters", "name")
        return {"name": name, **stored} if name else stored

    @router.get("/capacityclaims")
    async def list_claims(
        page_size_: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        """One page in creation order, as the deployments list (docs/API-NOTES.md: paging)."""
        size, after = page_size(page_size_), decode_token(page_token)
        records, cursor = await asyncio.to_thread(claims.list_claims_page, size, after)
        page: dict[str, Any] = {"capacityClaims": await with_status(records)}
        if (token := encode_token(cursor)) is not None:
            page["nextPageToken"] = token
        return page

    @router.post("/capacityclaims", status_code=201)
    async def create_claim(request: Request) -> dict[str, Any]:
        claim_id, spec = parse_claim_body(await read_json(request))
        stored = validated(spec)
        try:
            record = await asyncio.to_thread(
                claims.create_claim, claim_id or f"claim-{secrets.token_hex(4)}", stored, ctx.clock()
            )
        except Conflict as exc:
            raise ApiError(409, "ALREADY_EXISTS", str(exc), "id") from None
        ctx.wake_controller()
        return {"capacityClaim": (await with_status([record]))[0]}

    @router.get("/capacityclaims/{claim_id}")
    async def get_claim(claim_id: str) -> dict[str, Any]:
        return {"capacityClaim": (await with_status([await find(claim_id)]))[0]}

    @router.patch("/capacityclaims/{claim_id}")
    async def update_claim(claim_id: str, request: Request) -> dict[str, Any]:
        record = await find(claim_id)
        body_id, spec = parse_claim_body(await read_json(request))
        if body_id not in (None, record.id):
            raise ApiError(400, "INVALID_ARGUMENT", "id cannot be changed", "id")
        stored = validated(spec)
        try:
            updated = await asyncio.to_thread(claims.update_claim, record.id, stored, ctx.clock())
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"capacity claim {claim_id!r} not found") from None
        ctx.wake_controller()
        return {"capacityClaim": (await with_status([updated]))[0]}

    @router.delete("/capacityclaims/{claim_id}")
    async def delete_claim(claim_id: str) -> dict[str, Any]:
        try:
            record = await asyncio.to_thread(claims.delete_claim, claim_id)
        except NotFound:
            raise ApiError(404, "NOT_FOUND", f"capacity claim {claim_id!r} not found") from None
        ctx.wake_controller()
        # Deleted: it holds nothing any more; all it asked for is left unserved.
        return claim_body(record, {"allocatedInstances": 0, "pendingInstances": 0})

    @router.get("/usage")
    async def usage(start: str | None = None, end: str | None = None) -> dict[str, Any]:
        now = ctx.clock()
        start_s, end_s = usage_window(start, end, now)
        intervals = await asyncio.to_thread(runs.intervals, start_s, end_s)
        # A run still open is billed up to now: never for minutes of a future `end` that have not begun.
        closed = [i if i.stopped_at is not None else replace(i, stopped_at=max(now, i.started_at)) for i in intervals]
        report = usage_json(gpu_minutes(closed, start_s, end_s))
        if ctx.gateway_usage is not None:
            report["gateways"] = ctx.gateway_usage()
        return report

    return router
