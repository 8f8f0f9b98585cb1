"""Follower gateways get route deltas: the whole table once, then only what changed (issue 15).

The controller's hub (tide/control/channel_http.py) streams; a follower (tide/gateway/follower.py) applies.
In process: the hub's events are fed to a real follower's `_apply`, and after every change the follower's
table must equal the controller's, while a change to one of 2,000 model names sends a small event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tide.control.channel_http import DELTA_HISTORY, GatewayHub
from tide.gateway.follower import GatewayFollower
from tide.gateway.routes import DeploymentRoute, GatewayRoutes, ReplicaEndpoint, RouteTable


def route(deployment_id: str, model: str, url: str, weight: int = 100) -> DeploymentRoute:
    return DeploymentRoute(
        deployment_id=deployment_id,
        model_name=model,
        weight=weight,
        replicas=(ReplicaEndpoint(replica_id=f"{deployment_id}-r", base_url=url),),
    )


def table(
    routes: dict[str, tuple[DeploymentRoute, ...]], gateways: dict[str, dict[str, tuple[str, ...]]]
) -> RouteTable:
    return RouteTable(  # copies: the test edits its dicts in place for the next table
        routes=dict(routes),
        gateways=tuple(
            GatewayRoutes(gateway_id=g, hosts=(f"{g}.example",), models=dict(m)) for g, m in gateways.items()
        ),
    )


def start(n: int) -> tuple[dict[str, tuple[DeploymentRoute, ...]], dict[str, dict[str, tuple[str, ...]]]]:
    routes: dict[str, tuple[DeploymentRoute, ...]] = {
        f"m{i:04d}": (route(f"d{i:04d}", f"m{i:04d}", f"http://127.0.0.1:9000/{i}"),) for i in range(n)
    }
    return routes, {"default": {name: tuple(r.deployment_id for r in rs) for name, rs in routes.items()}}


def events(chunk: bytes) -> list[dict[str, object]]:
    return [json.loads(line[6:]) for line in chunk.decode().splitlines() if line.startswith("data: ")]


def test_a_follower_tracks_the_controllers_table_from_deltas() -> None:
    async def scenario() -> None:
        hub = GatewayHub()
        follower = GatewayFollower(["http://127.0.0.1:1"], None)
        routes, gateways = start(2000)
        hub.set_routes(table(routes, gateways))
        stream: AsyncIterator[bytes] = hub.stream()
        first = await anext(stream)
        assert len(first) > 200_000  # the whole table once
        for message in events(first):
            follower._apply(message)
        assert follower.table == hub._table

        async def change(new: RouteTable, most_bytes: int) -> None:
            hub.set_routes(new)
            chunk = await anext(stream)
            assert len(chunk) <= most_bytes, len(chunk)
            for message in events(chunk):
                follower._apply(message)
            assert follower.table == new

        routes["m0007"] = (route("d0007", "m0007", "http://127.0.0.1:9001/7"),)  # a PATCH of one endpoint
        await change(table(routes, gateways), 3_000)
        routes["m0008"] = (*routes["m0008"], route("x0008", "m0008", "http://127.0.0.1:9002/8", 50))  # a canary
        gateways["default"]["m0008"] = ("d0008", "x0008")
        await change(table(routes, gateways), 3_000)
        del routes["m0009"], gateways["default"]["m0009"]  # deleted
        await change(table(routes, gateways), 3_000)
        gateways["team"] = {"m0010": ("d0010",)}  # a new gateway resource
        del gateways["default"]["m0010"]  # the deployment moved to it
        await change(table(routes, gateways), 3_000)
        untouched = follower.table.routes["m1999"] if follower.table else None
        routes["m0011"] = (route("d0011", "m0011", "http://127.0.0.1:9003/11"),)
        await change(table(routes, gateways), 3_000)
        assert follower.table is not None and follower.table.routes["m1999"] is untouched  # kept, not rebuilt
        del gateways["team"]
        await change(table(routes, gateways), 3_000)
        await follower.http.aclose()

    asyncio.run(scenario())


def test_a_subscriber_too_far_behind_gets_the_whole_table_and_a_gap_reconnects() -> None:
    async def scenario() -> None:
        hub = GatewayHub()
        routes, gateways = start(5)
        hub.set_routes(table(routes, gateways))
        seen = hub.version
        for i in range(DELTA_HISTORY + 1):
            routes["m0001"] = (route("d0001", "m0001", f"http://127.0.0.1:9000/x{i}"),)
            hub.set_routes(table(routes, gateways))
        (message,) = events(hub.events_since(seen))
        assert "base" not in message and message["version"] == hub.version
        assert len(events(hub.events_since(hub.version - 3))) == 3  # close behind: the three deltas

        follower = GatewayFollower(["http://127.0.0.1:1"], None)
        follower._apply(events(hub.full_event())[0])
        routes["m0002"] = (route("d0002", "m0002", "http://127.0.0.1:9000/y"),)
        hub.set_routes(table(routes, gateways))
        routes["m0003"] = (route("d0003", "m0003", "http://127.0.0.1:9000/z"),)
        hub.set_routes(table(routes, gateways))
        with pytest.raises(ValueError, match="route delta"):  # it missed one: the follower reconnects
            follower._apply(events(hub.events_since(hub.version - 1))[0])
        await follower.http.aclose()

    asyncio.run(scenario())
