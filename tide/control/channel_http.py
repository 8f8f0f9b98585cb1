"""The controller <-> gateway channel on the wire: routes under `/internal/v1/...` on the API app.

- `GET  /internal/v1/routes`  server-sent events: the whole table at once, `data: {"version": N, "routes":
  ..., "gateways": ...}`, then on every change only what changed, `data: {"version": N, "base": N - 1,
  "routes": ..., "gateways": ..., "gatewayOrder": ...}` (`tide.gateway.wire.route_delta_to_json`): a PATCH
  sends one model name, not a 10,000-name table. A subscriber that fell more than `DELTA_HISTORY` changes
  behind gets the whole table again. 503 when this controller is not the leader.
- `POST /internal/v1/load`    `{"gatewayId", "routesVersion", "loads": {deployment: {...}}}`, every second.
- `POST /internal/v1/demand`  `{"deploymentId"}`: a request waits: no ready replica, or all busy (`Gateway.on_demand`).

All three take the management API's bearer token. `GatewayHub` is the controller's `RouteSink` when the
gateways are other processes: it keeps the latest table for subscribers and sums their load reports.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from tide.control.channel import LoadAggregator
from tide.gateway.routes import DeploymentLoad, RouteTable
from tide.gateway.wire import load_from_json, route_delta_to_json, route_table_to_json
from tide.timing import ROUTES_KEEPALIVE_S

DELTA_HISTORY = 256  # changes kept for subscribers that have not caught up yet


class GatewayHub:
    """Stands in for the gateway inside the controller process (see `RouteSink`)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.aggregator = LoadAggregator()
        self.version = 0
        self._table = RouteTable({})
        self._full: bytes | None = None  # the whole table's event, encoded when a subscriber needs it
        self._deltas: deque[tuple[int, bytes]] = deque(maxlen=DELTA_HISTORY)  # (version, its delta event)
        self._subscribers: set[asyncio.Event] = set()
        self.is_leader: Callable[[], bool] = lambda: True
        self.on_demand: Callable[[str], None] = lambda deployment_id: None
        self.closed = False

    @staticmethod
    def _event(message: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(message).encode() + b"\n\n"

    def full_event(self) -> bytes:
        """The whole current table (what a new subscriber gets first)."""
        if self._full is None:
            self._full = self._event({"version": self.version, **route_table_to_json(self._table)})
        return self._full

    def events_since(self, version: int) -> bytes:
        """What a subscriber that has `version` needs to reach the current one: the deltas in order, or the
        whole table when they are no longer all kept."""
        if version == self.version:
            return b""
        pending = [event for v, event in self._deltas if v > version]
        if len(pending) != self.version - version:
            return self.full_event()
        return b"".join(pending)

    # -- RouteSink -------------------------------------------------------------------------------------

    def set_routes(self, table: RouteTable) -> None:
        delta = route_delta_to_json(self._table, table)
        self.version += 1
        self._deltas.append((self.version, self._event({"version": self.version, "base": self.version - 1, **delta})))
        self._table, self._full = table, None
        for event in self._subscribers:
            event.set()

    def load_snapshot(self) -> dict[str, DeploymentLoad]:
        return self.aggregator.snapshot(self.clock())

    def in_flight(self, replica_id: str) -> int:
        return self.aggregator.in_flight(replica_id, self.clock(), self.version)

    # -- the wire --------------------------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[bytes]:
        event = asyncio.Event()
        self._subscribers.add(event)
        try:
            sent = self.version
            yield self.full_event()
            while not self.closed and self.is_leader():
                try:
                    await asyncio.wait_for(event.wait(), timeout=ROUTES_KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                event.clear()
                if self.version != sent:
                    events, sent = self.events_since(sent), self.version
                    yield events
        finally:
            self._subscribers.discard(event)

    def close(self) -> None:
        self.closed = True
        for event in self._subscribers:
            event.set()

    def router(self, token: str) -> APIRouter:
        def authorized(request: Request) -> None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise HTTPException(status_code=401, detail="missing or wrong bearer token")

        def leader_only() -> None:
            if not self.is_leader():
                raise HTTPException(status_code=503, detail="this controller is not the leader")

        router = APIRouter(prefix="/internal/v1", dependencies=[Depends(authorized)], include_in_schema=False)

        @router.get("/routes", dependencies=[Depends(leader_only)])
        async def routes() -> StreamingResponse:
            return StreamingResponse(
                self.stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )

        @router.post("/load", dependencies=[Depends(leader_only)])
        async def load(body: dict[str, Any]) -> dict[str, Any]:
            try:
                gateway_id = str(body["gatewayId"])
                loads = load_from_json(body.get("loads", {}))
                version = int(body.get("routesVersion", 0))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise HTTPException(status_code=400, detail=f"bad load report: {exc}") from None
            self.aggregator.report(gateway_id, loads, self.clock(), version)
            return {"gateways": len(self.aggregator.gateways(self.clock()))}

        @router.post("/demand", dependencies=[Depends(leader_only)])
        async def demand(body: dict[str, Any]) -> dict[str, Any]:
            deployment_id = body.get("deploymentId")
            if not isinstance(deployment_id, str):
                raise HTTPException(status_code=400, detail="deploymentId: expected a string")
            self.on_demand(deployment_id)
            return {}

        @router.get("/leader")
        async def leader() -> dict[str, Any]:
            return {"leader": self.is_leader(), "gateways": self.aggregator.gateways(self.clock())}

        return router
