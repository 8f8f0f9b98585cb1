"""The gateway forwards only the OpenAI routes engines serve, and a client that does not play by the rules
(huge or endless headers, idle connections, many half-open connections) cannot stall it."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams


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


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


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
            assert _status(response) == status, response
            assert fake.requests == []
            ok = await _exchange(gw.port, _post(b"/v1/chat/completions"))
            assert _status(ok) == 200
            assert [r.path for r in fake.requests] == ["/v1/chat/completions"]

    run(scenario())
