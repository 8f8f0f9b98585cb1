"""The activator queue: requests wait for a replica (bounded in length and time) and wake scale-from-zero."""

from __future__ import annotations

import asyncio

import httpx

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url


def test_request_waits_for_a_replica_and_is_served_when_routes_add_one() -> None:
    async def scenario() -> None:
        woken: list[str] = []
        async with upstreams(FakeUpstream("r1")) as (fake,):
            routes = table(deployment("cold", []))
            async with running_gateway(routes, on_demand=woken.append) as gw, httpx.AsyncClient() as http:
                waiting = asyncio.ensure_future(http.post(url(gw), json=CHAT))
                while gw.load_snapshot()["cold"].queued == 0:
                    await asyncio.sleep(0.01)
                assert woken == ["cold"]  # the autoscaler is told at once
                await asyncio.sleep(0.2)
                assert not waiting.done()

                gw.set_routes(table(deployment("cold", [fake])))
                response = await asyncio.wait_for(waiting, 2)
                assert response.status_code == 200
                assert response.json()["choices"][0]["message"]["content"] == "hello from r1"
                assert gw.load_snapshot()["cold"].queued == 0

    run(scenario())


def test_full_queue_gets_429_and_a_long_wait_gets_503_both_with_retry_after() -> None:
    async def scenario() -> None:
        routes = table(deployment("cold", [], max_queue=1, max_queue_wait_s=0.5))
        async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
            first = asyncio.ensure_future(http.post(url(gw), json=CHAT))
            while gw.load_snapshot()["cold"].queued == 0:
                await asyncio.sleep(0.01)

            rejected = await http.post(url(gw), json=CHAT)
            assert rejected.status_code == 429
            assert rejected.headers["retry-after"].isdigit()
            assert "max_queue=1" in rejected.json()["error"]["message"]

            timed_out = await first
            assert timed_out.status_code == 503
            assert timed_out.headers["retry-after"].isdigit()
            assert "max_queue_wait_s=0.5" in timed_out.json()["error"]["message"]
            assert gw.load_snapshot()["cold"].queued == 0
            # Counted by error code, for the controller's /metrics (tide_gateway_errors_total).
            assert gw.load_snapshot()["cold"].errors == {"queue_full": 1, "queue_timeout": 1}

    run(scenario())


def test_capped_replica_queues_the_overflow_until_it_has_room() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        async with upstreams(FakeUpstream("r1", hold=release)) as (fake,):
            routes = table(deployment("d", [fake], max_concurrency=1))
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                requests = [asyncio.ensure_future(http.post(url(gw), json={**CHAT, "n": i})) for i in range(3)]
                while gw.load_snapshot()["d"].queued < 2:
                    await asyncio.sleep(0.01)
                assert gw.in_flight("r1") == 1
                release.set()
                assert [r.status_code for r in await asyncio.gather(*requests)] == [200, 200, 200]
                assert len(fake.requests) == 3

    run(scenario())


def test_queued_requests_get_a_clear_503_when_their_deployment_is_removed() -> None:
    async def scenario() -> None:
        async with running_gateway(table(deployment("cold", []))) as gw, httpx.AsyncClient() as http:
            waiting = asyncio.ensure_future(http.post(url(gw), json=CHAT))
            while gw.load_snapshot()["cold"].queued == 0:
                await asyncio.sleep(0.01)
            gw.set_routes(table())
            response = await waiting
            assert response.status_code == 503
            assert "cold" in response.json()["error"]["message"]
            assert (await http.post(url(gw), json=CHAT)).status_code == 404  # the model is gone
            assert gw.load_snapshot() == {}

    run(scenario())
