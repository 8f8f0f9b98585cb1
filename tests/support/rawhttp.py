"""Raw-socket HTTP for tests of what a server does with bytes a client library would never send (huge or
slow headers, connections that stop mid-request): read until the close, send past a reset, the status."""

from __future__ import annotations

import asyncio
import re


async def read_all(reader: asyncio.StreamReader, timeout_s: float = 5.0) -> bytes:
    """Until the server closes the connection; a reset after the answer (our unsent bytes) ends it too."""
    received = b""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                if received:
                    return received
                raise
            if not chunk:
                return received
            received += chunk


async def send_ignoring_reset(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Send `data`; the server may answer and close before reading it all (that is what is tested)."""
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:
        pass


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP/1.1 response."""
    match = re.match(rb"HTTP/1\.1 (\d{3})", response)
    assert match, response[:200]
    return int(match.group(1))
