"""Failures and HTTP edge cases: retries before the first byte, cut streams, disconnects, big bodies."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from tests.gateway.fake_upstream import FakeUpstream, dead_port
from tests.gateway.helpers import CHAT, run, running_gateway, table, upstreams, url
from tide.gateway import DeploymentRoute, ReplicaEndpoint


def test_dead_replicas_are_retried_on_another_and_reported() -> None:
    async def scenario() -> None:
        failed: list[str] = []
        fakes = FakeUpstream("good"), FakeUpstream("dropper", drop_connections=True)
        async with upstreams(*fakes) as (good, dropper):
            refused = ReplicaEndpoint("refused", f"http://127.0.0.1:{await dead_port()}/v1")
            replicas = (refused, ReplicaEndpoint("dropper", dropper.base_url), ReplicaEndpoint("good", good.base_url))
            routes = table(DeploymentRoute("d", "tiny", 100, replicas))
            async with running_gateway(routes, on_replica_failure=failed.append) as gw, httpx.AsyncClient() as http:
                responses = [await http.post(url(gw), json=CHAT) for _ in range(6)]
                assert [r.status_code for r in responses] == [200] * 6
                assert {r.headers["x-replica"] for r in responses} == {"good"}
                assert set(failed) == {"refused", "dropper"}
                assert gw.load_snapshot()["d"].in_flight == 0

    run(scenario())


def test_all_replicas_dead_gives_502_in_openai_shape_after_the_last_try() -> None:
    async def scenario() -> None:
        refused = ReplicaEndpoint("refused", f"http://127.0.0.1:{await dead_port()}/v1")
        routes = table(DeploymentRoute("d", "tiny", 100, (refused,)))
        # max_attempts 3: the first failure and two retries, each after unhealthy_s (the replica may recover).
        async with running_gateway(routes, unhealthy_s=0.3) as gw, httpx.AsyncClient() as http:
            started = asyncio.get_running_loop().time()
            response = await http.post(url(gw), json=CHAT)
            waited = asyncio.get_running_loop().time() - started
            assert response.status_code == 502
            assert response.json()["error"]["code"] == "upstream_unavailable"
            assert 0.5 <= waited < 5, waited
            assert gw.load_snapshot()["d"].queued == 0

    run(scenario())


def test_a_request_whose_only_replica_died_waits_for_the_replacement() -> None:
    async def scenario() -> None:
        refused = ReplicaEndpoint("refused", f"http://127.0.0.1:{await dead_port()}/v1")
        async with upstreams(FakeUpstream("replacement")) as (replacement,):
            routes = table(DeploymentRoute("d", "tiny", 100, (refused,)))
            async with running_gateway(routes, unhealthy_s=30) as gw, httpx.AsyncClient(timeout=10) as http:
                pending = asyncio.ensure_future(http.post(url(gw), json=CHAT))
                for _ in range(100):  # the request failed on its only replica and waits, queued
                    if gw.load_snapshot()["d"].queued == 1:
                        break
                    await asyncio.sleep(0.02)
                assert gw.load_snapshot()["d"].queued == 1 and not pending.done()
                # The controller replaces the dead replica: the waiting request goes there, not to a 502.
                gw.set_routes(table(DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("new", replacement.base_url),))))
                response = await pending
                assert response.status_code == 200 and response.headers["x-replica"] == "replacement"
                assert gw.load_snapshot()["d"].queued == 0

    run(scenario())


def test_stream_cut_midway_ends_with_an_sse_error_event() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1", stream_events=5, cut_after_events=2)) as (fake,):
            routes = table(DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("r1", fake.base_url),)))
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                events = []
                async with http.stream("POST", url(gw), json={**CHAT, "stream": True}) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            events.append(line.removeprefix("data: "))
                assert len(events) == 3
                assert orjson.loads(events[0])["choices"][0]["delta"]["content"] == "tok0 "
                assert orjson.loads(events[-1])["error"]["code"] == "upstream_disconnected"
                assert len(fake.requests) == 1  # no retry once bytes reached the client
                # The client connection stays usable after the error event.
                assert (await http.post(url(gw), json=CHAT)).status_code == 200

    run(scenario())


def test_a_replica_that_sends_nothing_is_cut_off_with_504_and_the_work_cancelled() -> None:
    async def scenario() -> None:
        hung = FakeUpstream("hung", hold=asyncio.Event())  # never answers
        async with upstreams(hung, FakeUpstream("good")) as (hung, good):
            routes = table(
                DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("hung", hung.base_url),)),
                DeploymentRoute("e", "other", 100, (ReplicaEndpoint("good", good.base_url),)),
            )
            failed: list[str] = []
            async with (
                running_gateway(routes, upstream_idle_timeout_s=0.6, on_replica_failure=failed.append) as gw,
                httpx.AsyncClient(timeout=10) as http,
            ):
                started = asyncio.get_running_loop().time()
                response = await http.post(url(gw), json=CHAT)
                waited = asyncio.get_running_loop().time() - started
                assert response.status_code == 504, response.text
                error = response.json()["error"]
                assert error["code"] == "upstream_timeout" and "hung" in error["message"]
                assert 0.6 <= waited < 3, waited
                assert len(hung.requests) == 1  # not retried: the work may have run
                assert gw.in_flight("hung") == 0 and gw.upstream_timeouts == 1
                assert failed == ["hung"]  # reported, and avoided for unhealthy_s while others have room
                assert gw.load_snapshot()["d"].errors == {"upstream_timeout": 1}
                # The client's connection is still good for the next request.
                assert (await http.post(url(gw), json={**CHAT, "model": "other"})).status_code == 200

    run(scenario())


def test_a_stream_that_stalls_ends_with_a_timeout_event_but_a_slow_one_is_left_alone() -> None:
    async def scenario() -> None:
        stalled = FakeUpstream("stalled", stream_events=5, stall_after_events=2)
        slow = FakeUpstream("slow", stream_events=6, event_delay_s=0.25)  # 1.5 s in all, never 1 s quiet
        async with upstreams(stalled, slow) as (stalled, slow):
            routes = table(
                DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("stalled", stalled.base_url),)),
                DeploymentRoute("e", "other", 100, (ReplicaEndpoint("slow", slow.base_url),)),
            )
            async with (
                running_gateway(routes, upstream_idle_timeout_s=1.0) as gw,
                httpx.AsyncClient(timeout=10) as http,
            ):

                async def stream(model: str) -> list[str]:
                    events = []
                    body = {**CHAT, "model": model, "stream": True}
                    async with http.stream("POST", url(gw), json=body) as response:
                        assert response.status_code == 200
                        async for line in response.aiter_lines():
                            if line.startswith("data: "):
                                events.append(line.removeprefix("data: "))
                    return events

                events = await stream("tiny")
                assert len(events) == 3
                assert orjson.loads(events[1])["choices"][0]["delta"]["content"] == "tok1 "
                assert orjson.loads(events[-1])["error"]["code"] == "upstream_timeout"
                for _ in range(100):  # closing the upstream connection is how the replica learns to stop
                    if stalled.cancelled:
                        break
                    await asyncio.sleep(0.02)
                assert stalled.cancelled == 1 and gw.in_flight("stalled") == 0
                assert gw.load_snapshot()["d"].errors == {"upstream_timeout": 1}  # a cut stream counts too

                events = await stream("other")
                assert events[-1] == "[DONE]" and len(events) == 7
                assert gw.upstream_timeouts == 1

    run(scenario())


def test_an_http10_client_also_sees_the_timeout_event_before_the_close() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("stalled", stream_events=5, stall_after_events=1)) as (stalled,):
            routes = table(DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("stalled", stalled.base_url),)))
            async with running_gateway(routes, upstream_idle_timeout_s=0.5) as gw:
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                body = orjson.dumps({**CHAT, "stream": True})
                writer.write(
                    b"POST /v1/chat/completions HTTP/1.0\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%b" % (len(body), body)
                )
                response = await asyncio.wait_for(reader.read(), 5)  # the body ends with the close
                writer.close()
                events = [line[6:] for line in response.split(b"\n") if line.startswith(b"data: ")]
                assert len(events) == 2 and b"tok0" in events[0]
                assert orjson.loads(events[-1])["error"]["code"] == "upstream_timeout"

    run(scenario())


def test_client_disconnect_midstream_cancels_the_upstream_request() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1", stream_events=200, event_delay_s=0.02)) as (fake,):
            routes = table(DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("r1", fake.base_url),)))
            async with running_gateway(routes) as gw:
                async with (
                    httpx.AsyncClient() as http,
                    http.stream("POST", url(gw), json={**CHAT, "stream": True}) as response,
                ):
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            break  # leaving the block closes the connection mid-stream
                for _ in range(100):
                    if fake.cancelled:
                        break
                    await asyncio.sleep(0.02)
                assert fake.cancelled == 1
                assert gw.in_flight("r1") == 0

    run(scenario())


def test_large_bodies_chunked_uploads_and_keepalive_both_ways() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,):
            routes = table(DeploymentRoute("d", "tiny", 100, (ReplicaEndpoint("r1", fake.base_url),)))
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                prompt = "y" * 3_000_000
                big = await http.post(url(gw), json={**CHAT, "prompt": prompt, "echo_size": 5_000_000})
                assert big.status_code == 200 and len(big.json()["echo"]) == 5_000_000
                assert fake.requests[-1].body["prompt"] == prompt

                async def chunked_body():  # type: ignore[no-untyped-def]
                    data = orjson.dumps(CHAT)
                    yield data[:10]
                    yield data[10:]

                chunked = await http.post(url(gw), content=chunked_body(), headers={"content-type": "application/json"})
                assert chunked.status_code == 200

                for _ in range(20):
                    assert (await http.post(url(gw), json=CHAT)).status_code == 200
                assert fake.connections == 1  # one kept-alive upstream connection served all of them

    run(scenario())
