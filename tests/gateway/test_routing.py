"""Routing: by body, path and header; weighted split between deployments; least in-flight replicas."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url


def test_weighted_split_follows_weights_and_weight_zero_gets_nothing() -> None:
    async def scenario() -> None:
        fakes = FakeUpstream("big"), FakeUpstream("small"), FakeUpstream("off")
        async with upstreams(*fakes) as (big, small, off):
            routes = table(
                deployment("big", [big], weight=900),
                deployment("small", [small], weight=100),
                deployment("off", [off], weight=0),
            )
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                served: Counter[str] = Counter()
                for _ in range(300):
                    response = await http.post(url(gw), json=CHAT)
                    served[response.headers["x-replica"]] += 1
                assert served["off"] == 0
                assert abs(served["big"] / 300 - 0.9) <= 0.03, served
                assert gw.load_snapshot()["small"].requests_total == served["small"]

    run(scenario())


def test_path_and_header_routing_override_the_body_model() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("a"), FakeUpstream("b")) as (a, b):
            routes = table(deployment("a", [a], model="alpha"), deployment("b", [b], model="beta"))
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                body = {**CHAT, "model": "alpha"}
                by_body = await http.post(url(gw), json=body)
                by_path = await http.post(url(gw, "/beta/v1/chat/completions"), json=body)
                by_header = await http.post(url(gw), json=body, headers={"x-tide-model": "beta"})
                assert [r.headers["x-replica"] for r in (by_body, by_path, by_header)] == ["a", "b", "b"]
                assert b.requests[0].path == "/v1/chat/completions"  # the model prefix is stripped

                models = (await http.get(url(gw, "/v1/models"))).json()
                assert models["object"] == "list"
                assert sorted(m["id"] for m in models["data"]) == ["alpha", "beta"]
                assert (await http.get(url(gw, "/beta/v1/models"))).json()["data"][0]["id"] == "beta"

    run(scenario())


def test_unknown_model_is_404_in_openai_shape_and_bad_json_is_400() -> None:
    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("a")) as (a,),
            running_gateway(table(deployment("a", [a]))) as gw,
            httpx.AsyncClient() as http,
        ):
            missing = await http.post(url(gw), json={**CHAT, "model": "nope"})
            assert missing.status_code == 404
            error = missing.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert error["param"] == "model"
            assert error["code"] == "model_not_found"
            assert "nope" in error["message"] and "127.0.0.1" not in missing.text and "tiny" not in missing.text

            assert (await http.post(url(gw, "/nope/v1/chat/completions"), json=CHAT)).status_code == 404
            bad = await http.post(url(gw), content=b'{"model": "tiny",', headers={"content-type": "application/json"})
            assert bad.status_code == 400
            assert bad.json()["error"]["type"] == "invalid_request_error"
            assert a.requests == []

    run(scenario())


def test_least_in_flight_avoids_a_busy_replica() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        async with (
            upstreams(FakeUpstream("slow", hold=release), FakeUpstream("fast")) as (slow, fast),
            running_gateway(table(deployment("d", [slow, fast]))) as gw,
            httpx.AsyncClient() as http,
        ):
            # Park one request on `slow` (it holds every response until released).
            held = asyncio.ensure_future(http.post(url(gw), json=CHAT, headers={"x-tide-model": "tiny"}))
            while gw.in_flight("slow") == 0 and not held.done():
                await asyncio.sleep(0.01)
            if held.done():  # went to `fast` first; the next one goes to `slow` (tie broken round-robin)
                held = asyncio.ensure_future(http.post(url(gw), json=CHAT))
                while gw.in_flight("slow") == 0:
                    await asyncio.sleep(0.01)
            served = [(await http.post(url(gw), json=CHAT)).headers["x-replica"] for _ in range(10)]
            assert served == ["fast"] * 10  # round-robin would have sent half to the busy replica
            load = gw.load_snapshot()["d"]
            assert load.in_flight == 1 and load.per_replica_in_flight == {"slow": 1, "fast": 0}
            release.set()
            assert (await held).headers["x-replica"] == "slow"
            assert gw.load_snapshot()["d"].in_flight == 0

    run(scenario())


def test_dropped_replica_drains_in_flight_and_gets_no_new_requests() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        async with (
            upstreams(FakeUpstream("old", hold=release), FakeUpstream("new")) as (old, new),
            running_gateway(table(deployment("d", [old]))) as gw,
            httpx.AsyncClient() as http,
        ):
            held = asyncio.ensure_future(http.post(url(gw), json=CHAT))
            while gw.in_flight("old") == 0:
                await asyncio.sleep(0.01)
            gw.set_routes(table(deployment("d", [new])))
            assert (await http.post(url(gw), json=CHAT)).headers["x-replica"] == "new"
            assert gw.in_flight("old") == 1  # still finishing
            release.set()
            response = await held
            assert response.status_code == 200 and response.headers["x-replica"] == "old"
            assert gw.in_flight("old") == 0
            assert len(old.requests) == 1

    run(scenario())
