"""The gateway forwards only the OpenAI routes engines serve, and a client that does not play by the rules
(huge or endless headers, idle connections, many half-open connections) cannot stall it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams
from tests.support.rawhttp import read_all, refusal_of_oversized, status_of
from tide.gateway import Gateway
from tide.gateway.keys import GatewayKeys
from tide.http_limits import ConnectionLimits


def _post(path: bytes, body: object = CHAT) -> bytes:
    data = orjson.dumps(body)
    return b"POST %b HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        path,
        len(data),
        data,
    )


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    body = await asyncio.wait_for(reader.readexactly(int(length.group(1))), 5) if length else b""
    writer.close()
    return head + body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (b"/v1/../../admin/x", 400),
        (b"/v1/chat/../../admin", 400),
        (b"/v1/%2e%2e/admin", 400),
        (b"/tiny/v1/./chat/completions", 400),
        (b"/v1/admin/x", 404),
        (b"/v1/chat/completions/extra", 404),
    ],
)
def test_only_openai_routes_reach_a_replica(path: bytes, status: int) -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,), running_gateway(table(deployment("d", [fake]))) as gw:
            response = await _exchange(gw.port, _post(path))
            assert status_of(response) == status, response
            assert fake.requests == []
            ok = await _exchange(gw.port, _post(b"/v1/chat/completions"))
            assert status_of(ok) == 200
            assert [r.path for r in fake.requests] == ["/v1/chat/completions"]

    run(scenario())


@pytest.mark.parametrize("keyed", [False, True])
def test_a_huge_header_gets_431_without_being_read_whole(keyed: bool, tmp_path: Path) -> None:
    options: dict[str, Any] = {}
    if keyed:
        keys_file = tmp_path / "keys"
        keys_file.write_text("sk-test-key-0123456789\n")
        options["api_keys"] = GatewayKeys.from_config(keys_file)

    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1")) as (fake,),
            running_gateway(table(deployment("d", [fake])), **options) as gw,
        ):
            head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-big: "
            response = await refusal_of_oversized("127.0.0.1", gw.port, head + b"a" * (20 << 20))
            assert status_of(response) == 431, response[:200]
            many = b"".join(b"x-h%d: v\r\n" % i for i in range(200))
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"GET /health HTTP/1.1\r\nhost: gw\r\n" + many + b"\r\n")
            assert status_of(await read_all(reader)) == 431
            writer.close()
            health = await _exchange(gw.port, b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n")
            assert status_of(health) == 200
            assert fake.requests == []

    run(scenario())


def test_slow_headers_get_408_and_idle_connections_are_closed() -> None:
    limits = ConnectionLimits(head_timeout_s=0.5, idle_timeout_s=0.5)

    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1")) as (fake,),
            running_gateway(table(deployment("d", [fake])), limits=limits) as gw,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n")  # and never the rest
            assert status_of(await read_all(reader)) == 408
            writer.close()
            # A keep-alive connection that finished its request and sends nothing more is closed.
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(_post(b"/v1/chat/completions"))
            response = await read_all(reader)
            assert status_of(response) == 200 and b"connection: close" not in response.lower()
            writer.close()
            # A connection that never sends a byte is closed too.
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            assert await read_all(reader) == b""
            writer.close()

    run(scenario())


def test_unfinished_connections_are_capped_and_the_gateway_keeps_serving() -> None:
    limits = ConnectionLimits(max_unfinished=4, head_timeout_s=30)

    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1")) as (fake,),
            running_gateway(table(deployment("d", [fake])), limits=limits) as gw,
        ):
            slow = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(4)]
            for _, writer in slow:
                writer.write(b"POST /v1/chat/completions HTTP/1.1\r\n")
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            assert status_of(await read_all(reader)) == 503
            writer.close()
            for _, writer in slow:
                writer.close()

            async def served() -> bool:
                try:
                    return status_of(await _exchange(gw.port, _post(b"/v1/chat/completions"))) == 200
                except (ConnectionError, asyncio.IncompleteReadError):
                    return False

            async with asyncio.timeout(5):
                while not await served():
                    await asyncio.sleep(0.05)

    run(scenario())


def test_a_gateway_started_before_its_routes_holds_requests_instead_of_404() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,):
            gateway = Gateway(hold_until_routes=True)
            await gateway.start("127.0.0.1", 0)
            try:
                pending = [
                    asyncio.create_task(_exchange(gateway.port, _post(b"/v1/chat/completions"))) for _ in range(3)
                ]
                models = asyncio.create_task(_exchange(gateway.port, b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n"))
                health = await _exchange(gateway.port, b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n")
                assert status_of(health) == 200  # liveness does not wait
                done, _ = await asyncio.wait([*pending, models], timeout=0.3)
                assert not done  # held, not answered 404
                gateway.set_routes(table(deployment("d", [fake])))  # the controller's first table
                assert [status_of(r) for r in await asyncio.gather(*pending)] == [200, 200, 200]
                assert b'"tiny"' in await models
            finally:
                await gateway.stop()

    run(scenario())


def test_held_requests_get_503_when_no_routes_arrive() -> None:
    async def scenario() -> None:
        gateway = Gateway(hold_until_routes=True, hold_timeout_s=0.3)
        await gateway.start("127.0.0.1", 0)
        try:
            response = await _exchange(gateway.port, _post(b"/v1/chat/completions"))
            assert status_of(response) == 503 and b"retry-after" in response.lower()
            assert b"no routing table" in response
        finally:
            await gateway.stop()

    run(scenario())


def test_a_deployment_waking_from_zero_lends_its_share_to_a_ready_sibling() -> None:
    woken: list[str] = []

    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,):
            routes = table(deployment("stable", [fake], weight=50), deployment("canary", [], weight=50))
            async with running_gateway(routes, on_demand=woken.append) as gw:
                responses = [await _exchange(gw.port, _post(b"/v1/chat/completions")) for _ in range(6)]
                assert [status_of(r) for r in responses] == [200] * 6  # none waited for the canary's cold start
                assert len(fake.requests) == 6 and "canary" in woken

    run(scenario())
