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


async def refusal_of_oversized(host: str, port: int, data: bytes, attempts: int = 5) -> bytes:
    """The server's answer to `data`, which it refuses before reading it all. It then closes with our bytes
    unread, so the kernel resets the connection, and Linux drops an answer not yet read when the reset
    arrives: a reset with nothing read is retried (a loaded machine reads late), up to `attempts`."""
    for attempt in range(attempts):
        reader, writer = await asyncio.open_connection(host, port)
        sender = asyncio.create_task(send_ignoring_reset(writer, data))
        try:
            return await read_all(reader)
        except ConnectionResetError:
            if attempt == attempts - 1:
                raise
        finally:
            sender.cancel()
            writer.close()
    raise AssertionError("unreachable")
