"""HTTP/1.1 details on the client side: pipelining, Connection: close, chunked re-framing for streams."""

from __future__ import annotations

import asyncio
import re

import orjson

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams


def _post(body: object, extra: bytes = b"") -> bytes:
    data = orjson.dumps(body)
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%b\r\n%b" % (len(data), extra, data)
    )


def test_pipelined_requests_are_answered_in_order_and_connection_close_is_honoured() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("r1")) as (fake,), running_gateway(table(deployment("d", [fake]))) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(_post(CHAT) + _post({**CHAT, "model": "missing"}) + _post(CHAT, b"connection: close\r\n"))
            received = await asyncio.wait_for(reader.read(), 5)  # read() ends only if the gateway closes
            statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
            assert statuses == [b"200", b"404", b"200"]
            assert received.lower().count(b"connection: close") == 1
            writer.close()

    run(scenario())


def test_streamed_response_reaches_the_client_as_chunked_events_before_it_ends() -> None:
    async def scenario() -> None:
        async with (
            upstreams(FakeUpstream("r1", stream_events=50, event_delay_s=0.01)) as (fake,),
            running_gateway(table(deployment("d", [fake]))) as gw,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(_post({**CHAT, "stream": True}))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert b"transfer-encoding: chunked" in head.lower()
            assert b"text/event-stream" in head.lower()
            first = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
            assert b"tok0" in first
            assert fake.in_progress == 1  # the first event arrived while the replica was still generating
            rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
            assert b"data: [DONE]" in rest
            writer.close()

    run(scenario())
