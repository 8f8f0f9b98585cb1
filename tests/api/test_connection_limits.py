"""The management API port applies the same connection limits as the gateway: a huge or endless header
does not stall it, and a connection that sends nothing is not kept."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.rawhttp import read_all, refusal_of_oversized, status_of
from tide.api.protocol import uvicorn_options
from tide.http_limits import ConnectionLimits


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


APP = Starlette(routes=[Route("/healthz", ok)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def api_server(limits: ConnectionLimits) -> AsyncIterator[int]:
    port = _free_port()
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **uvicorn_options(limits)
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(20):  # a server that cannot start fails here, not at pytest's timeout
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _healthz(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: api\r\nconnection: close\r\n\r\n")
    response = await read_all(reader)
    writer.close()
    return status_of(response)


def test_api_port_refuses_huge_and_slow_headers_and_caps_unfinished_connections() -> None:
    limits = ConnectionLimits(head_timeout_s=0.5, max_unfinished=3)

    async def scenario() -> None:
        async with api_server(limits) as port:
            huge = b"GET /healthz HTTP/1.1\r\nx-big: " + b"a" * (20 << 20)
            assert status_of(await refusal_of_oversized("127.0.0.1", port, huge)) == 431
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(200)) + b"\r\n")
            assert status_of(await read_all(reader)) == 431
            writer.close()
            # slowloris: a head that never ends gets 408; a connection that never sends is closed
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nhost: api\r\n")
            assert status_of(await read_all(reader)) == 408
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await read_all(reader) == b""
            writer.close()
            # unfinished connections beyond the cap are refused; the API serves again once they go
            slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert status_of(await read_all(reader)) == 503
            writer.close()
            for _, slow_writer in slow:
                slow_writer.close()
            async with asyncio.timeout(5):
                while True:
                    try:
                        if await _healthz(port) == 200:
                            break
                    except (ConnectionError, AssertionError):
                        pass
                    await asyncio.sleep(0.05)

    uvloop.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.parametrize("bad", [0, -1])
def test_limits_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_headers"):
        ConnectionLimits(max_headers=bad)
