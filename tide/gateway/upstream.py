"""Keep-alive HTTP/1.1 connections to replicas: a raw asyncio protocol parsed with httptools.

One connection carries one request at a time. Parser callbacks only record what arrived; the exchange
acts after each `feed_data`, so a burst of bytes turns into one write to the client.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import httptools

from tide.timing import UPSTREAM_CONNECT_TIMEOUT_S

if TYPE_CHECKING:
    from tide.gateway.exchange import Exchange

Address = tuple[str, int]


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool, address: Address) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.requests_sent = 0
        self.reads = 0  # data_received calls: the gateway's idle watchdog compares it between sweeps
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._response_started = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._complete = False
        self._keep_alive = False
        self._reading_paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes on an idle connection: the server is confused; drop it
            self.close()
            return
        self._response_started = True
        self.reads += 1
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.exchange = None
            self.close()
            exchange.on_upstream_lost(self, protocol_error=True)
            return
        exchange.flush()
        if self._complete:
            self._complete = False
            self.exchange = None
            exchange.on_upstream_complete(self)
            if self._keep_alive and not self.closed:
                self.pool.release(self)
            else:
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.on_upstream_lost(self, protocol_error=False)

    def pause_writing(self) -> None:  # request bodies are bounded; the transport buffers them
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks
    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.exchange is not None
        headers, self._headers = self._headers, []
        reason, self._reason = self._reason, b""
        self.exchange.on_upstream_head(self._parser.get_status_code(), reason, headers)

    def on_body(self, body: bytes) -> None:
        assert self.exchange is not None
        self.exchange.on_upstream_body(body)

    def on_message_complete(self) -> None:
        # Asked here: after feed_data returns, the parser has reset and always answers False.
        self._keep_alive = self._parser.should_keep_alive()
        self._complete = True

    # used by the exchange
    @property
    def response_started(self) -> bool:
        return self._response_started

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    def send(self, exchange: Exchange, request: bytes) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self._response_started = False
        self.requests_sent += 1
        self.transport.write(request)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        """Drop the connection now (also how an upstream request is cancelled)."""
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.abort()


class UpstreamPool:
    """Idle keep-alive connections per replica address, reused most-recent first."""

    def __init__(self, connect_timeout_s: float = UPSTREAM_CONNECT_TIMEOUT_S, max_idle_per_address: int = 512) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.max_idle_per_address = max_idle_per_address
        self._idle: dict[Address, list[UpstreamConnection]] = {}
        self._tls: ssl.SSLContext | None = None

    def take_idle(self, address: Address) -> UpstreamConnection | None:
        idle = self._idle.get(address)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def connect(self, address: Address, use_tls: bool) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if use_tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: UpstreamConnection(self, address),
                address[0],
                address[1],
                ssl=tls,
                server_hostname=address[0] if tls else None,
            ),
            self.connect_timeout_s,
        )
        return protocol

    def release(self, connection: UpstreamConnection) -> None:
        connection.resume_reading()  # it may have been paused for a slow client just as the response ended
        idle = self._idle.setdefault(connection.address, [])
        if len(idle) >= self.max_idle_per_address:
            connection.close()
        else:
            idle.append(connection)

    def forget(self, connection: UpstreamConnection) -> None:
        idle = self._idle.get(connection.address)
        if idle and connection in idle:
            idle.remove(connection)

    def close_all(self) -> None:
        for idle in list(self._idle.values()):
            for connection in list(idle):
                connection.close()
        self._idle.clear()
