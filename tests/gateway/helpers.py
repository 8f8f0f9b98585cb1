"""Shared set-up for gateway tests: run a scenario on uvloop, start a gateway, build route tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvloop

from tests.gateway.fake_upstream import FakeUpstream
from tide.gateway import DeploymentRoute, Gateway, ReplicaEndpoint, RouteTable

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T], timeout_s: float = 20.0) -> T:
    return uvloop.run(asyncio.wait_for(scenario, timeout_s))


def deployment(
    deployment_id: str,
    upstreams: Sequence[FakeUpstream | str],
    *,
    model: str = "tiny",
    weight: int = 100,
    max_concurrency: int | None = None,
    **bounds: Any,
) -> DeploymentRoute:
    replicas = tuple(
        ReplicaEndpoint(
            upstream if isinstance(upstream, str) else upstream.name,
            upstream.base_url if isinstance(upstream, FakeUpstream) else "http://127.0.0.1:1/v1",
            max_concurrency,
        )
        for upstream in upstreams
    )
    return DeploymentRoute(deployment_id, model, weight, replicas, **bounds)


def table(*deployments: DeploymentRoute) -> RouteTable:
    routes: dict[str, tuple[DeploymentRoute, ...]] = {}
    for route in deployments:
        routes[route.model_name] = (*routes.get(route.model_name, ()), route)
    return RouteTable(routes)


@asynccontextmanager
async def running_gateway(routes: RouteTable, **options: Any) -> AsyncIterator[Gateway]:
    gateway = Gateway(routes, **options)
    await gateway.start("127.0.0.1", 0)
    try:
        yield gateway
    finally:
        await gateway.stop()


@asynccontextmanager
async def upstreams(*fakes: FakeUpstream) -> AsyncIterator[tuple[FakeUpstream, ...]]:
    for fake in fakes:
        await fake.start()
    try:
        yield fakes
    finally:
        for fake in fakes:
            await fake.stop()


def url(gateway: Gateway, path: str = "/v1/chat/completions") -> str:
    return f"http://127.0.0.1:{gateway.port}{path}"


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
