"""`tide gateway --controller URL`: a gateway process that follows the controller.

It subscribes to the leader's route stream (server-sent events: the full table at once, then what changed), posts its load snapshot every second and right after applying a table, and posts wake-ups
when a request finds a deployment with no ready replica. Several controller URLs may be given (leader
and standbys): it follows whichever is the leader. While no controller answers it keeps the last table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from typing import Any

import httpx

from tide.gateway.gateway import Gateway
from tide.gateway.keys import GatewayKeys
from tide.gateway.routes import RouteTable
from tide.gateway.wire import apply_route_delta, load_to_json, route_table_from_json
from tide.gc_pauses import freeze_after_full_collections
from tide.timing import DEMAND_MIN_INTERVAL_S, LOAD_INTERVAL_S, ROUTES_KEEPALIVE_S, UPSTREAM_IDLE_TIMEOUT_S

log = logging.getLogger("tide.gateway.follower")


class GatewayFollower:
    def __init__(
        self,
        controllers: list[str],
        token: str | None,
        gateway_id: str | None = None,
        upstream_idle_timeout_s: float | None = UPSTREAM_IDLE_TIMEOUT_S,
        api_keys: GatewayKeys | None = None,
    ) -> None:
        if not controllers:
            raise ValueError("at least one controller URL is needed")
        self.controllers = [url.rstrip("/") for url in controllers]
        self.gateway_id = gateway_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(5.0, read=3 * ROUTES_KEEPALIVE_S))
        self.gateway = Gateway(
            on_demand=self._on_demand,
            upstream_idle_timeout_s=upstream_idle_timeout_s,
            api_keys=api_keys,
            hold_until_routes=True,
        )
        self.leader: str | None = None
        self.routes_version = 0
        self.table: RouteTable | None = None  # the last table applied (route deltas apply to it)
        self.connected = asyncio.Event()
        self._demand_sent: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._posts: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        await self.gateway.start(host, port)
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._report_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.gateway.stop(grace_s=5.0)
        await self.http.aclose()

    async def _follow(self) -> None:
        index = 0
        while True:
            url = self.controllers[index % len(self.controllers)]
            try:
                async with self.http.stream("GET", f"{url}/internal/v1/routes") as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise httpx.HTTPStatusError(
                            f"{response.status_code}", request=response.request, response=response
                        )
                    self.leader = url
                    log.info("following controller %s", url)
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            self._apply(json.loads(line[6:]))
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.debug("controller %s: %s", url, exc)
            if self.leader == url:
                log.warning("lost controller %s; looking for the leader", url)
            self.leader = None
            self.connected.clear()
            index += 1
            await asyncio.sleep(0.2 if index % len(self.controllers) else 0.5)

    def _apply(self, message: dict[str, Any]) -> None:
        """A whole table, or (with `base`) the changes since the version this gateway has; a delta that does
        not follow on from it means a lost event: reconnect for the whole table (ValueError)."""
        if "base" in message:
            if message["base"] != self.routes_version or self.table is None:
                raise ValueError(f"route delta from v{message['base']}, this gateway has v{self.routes_version}")
            table = apply_route_delta(self.table, message)
        else:
            table = route_table_from_json(message)
        self.gateway.set_routes(table)
        self.table = table
        version = message.get("version", 0)
        self.routes_version = int(version) if isinstance(version, int) else 0
        replicas = sorted(e.replica_id for routes in table.routes.values() for r in routes for e in r.replicas)
        log.info("routes v%d applied at %.3f: ready replicas %s", self.routes_version, time.time(), replicas)
        self.connected.set()
        # Confirm at once: a drain on the controller waits for every gateway to see the new table.
        task = asyncio.create_task(self._post_load())
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post_load(self) -> None:
        url = self.leader
        if url is None:
            return
        body = {
            "gatewayId": self.gateway_id,
            "routesVersion": self.routes_version,
            "loads": load_to_json(self.gateway.load_snapshot()),
        }
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(f"{url}/internal/v1/load", json=body)

    async def _report_loop(self) -> None:
        while True:
            await self._post_load()
            await asyncio.sleep(LOAD_INTERVAL_S)

    async def _on_demand(self, deployment_id: str) -> None:
        now = time.monotonic()
        if now - self._demand_sent.get(deployment_id, -1e9) < DEMAND_MIN_INTERVAL_S:
            return
        self._demand_sent[deployment_id] = now
        url = self.leader
        if url is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(f"{url}/internal/v1/demand", json={"deploymentId": deployment_id})


async def serve(
    host: str,
    port: int,
    controllers: list[str],
    token: str | None,
    upstream_idle_timeout_s: float | None,
    api_keys: GatewayKeys | None,
) -> None:
    follower = GatewayFollower(controllers, token, upstream_idle_timeout_s=upstream_idle_timeout_s, api_keys=api_keys)
    await follower.start(host, port)
    print(f"tide gateway {follower.gateway_id} on http://{host}:{follower.gateway.port}/v1", flush=True)
    print(f"  following: {', '.join(follower.controllers)}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await follower.stop()


def run_gateway(
    host: str,
    port: int,
    controllers: list[str],
    token: str | None,
    upstream_idle_timeout_s: float | None = UPSTREAM_IDLE_TIMEOUT_S,
    api_keys: GatewayKeys | None = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    import uvloop

    freeze_after_full_collections(time.monotonic)
    uvloop.run(serve(host, port, controllers, token, upstream_idle_timeout_s, api_keys))
