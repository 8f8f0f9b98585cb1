"""The client side: a raw asyncio protocol parsing HTTP/1.1 requests with httptools.

Requests on one connection are answered in order (pipelined ones wait their turn); each whole request
(head and body) is handed to the gateway, which either answers at once or proxies it in an Exchange.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httptools

from tide.gateway.errors import error_response

if TYPE_CHECKING:
    from tide.gateway.exchange import Exchange


@dataclass(slots=True)
class IncomingRequest:
    method: bytes
    path: bytes
    query: bytes  # including the leading b"?", or b""
    headers: list[tuple[bytes, bytes]]  # names lower-cased
    body: bytes
    keep_alive: bool
    http11: bool


class RequestHandler(Protocol):
    max_body_bytes: int

    def accepts_headers(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """False when the request will be refused whatever its body (no valid API key): it is not kept."""
        ...

    def handle(self, client: ClientConnection, request: IncomingRequest) -> None: ...

    def connection_opened(self, client: ClientConnection) -> None: ...

    def connection_closed(self, client: ClientConnection) -> None: ...


class ClientConnection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None  # the request being answered now
        self.closed = False
        self.writing_paused = False
        self._busy = False
        self._dispatching = False
        self._eof = False
        self._pending: deque[IncomingRequest] = deque()
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._refused = False  # no valid API key: the body is read and dropped, and 401 answers it
        self._keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.handler.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "Protocol upgrades are not supported")
            return
        except httptools.HttpParserError:
            self._reject(400, "Malformed HTTP request")
            return
        if self._too_large:
            self._reject(413, f"Request body exceeds {self.handler.max_body_bytes} bytes")
            return
        if not self._busy and self._pending:
            self._next()

    def eof_received(self) -> bool | None:
        # Half-closed by the client: finish answering what was asked, then close (see `finish`).
        self._eof = True
        return True if self._busy or self._pending else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pending.clear()
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.cancel()
        self.handler.connection_closed(self)

    def pause_writing(self) -> None:
        # The client reads slower than the replica writes: stop reading from the replica.
        self.writing_paused = True
        if self.exchange is not None:
            self.exchange.pause_upstream()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.exchange is not None:
            self.exchange.resume_upstream()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._refused = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        if not self.handler.accepts_headers(self._headers):
            self._refused = True  # no 100 Continue: a client that waits for it sends no body at all
            return
        for name, value in self._headers:
            if name == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_size += len(body)
        if self._body_size > self.handler.max_body_bytes:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._too_large:
            return
        url = self._url
        query_at = url.find(b"?")
        path, query = (url, b"") if query_at < 0 else (url[:query_at], url[query_at:])
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._pending.append(
            IncomingRequest(
                self._parser.get_method(),
                path,
                query,
                self._headers,
                body,
                self._keep_alive,
                self._parser.get_http_version() == "1.1",
            )
        )

    # used by the gateway and exchanges
    def _next(self) -> None:
        if self._dispatching:  # answered synchronously inside handle(): the loop below goes on
            return
        self._dispatching = True
        try:
            while self._pending and not self._busy and not self.closed:
                self._busy = True
                self.handler.handle(self, self._pending.popleft())
        finally:
            self._dispatching = False

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def respond(self, response: bytes, keep_alive: bool) -> None:
        """Answer the current request with a complete response and move on to the next one."""
        self.write(response)
        self.finish(keep_alive)

    def finish(self, keep_alive: bool) -> None:
        self.exchange = None
        self._busy = False
        if not keep_alive or (self._eof and not self._pending):
            self.close()
        elif self._pending:
            self._next()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection so the client sees an incomplete response rather than a wrong one."""
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def _reject(self, status: int, message: str) -> None:
        self._pending.clear()
        if not self._busy:
            self.write(error_response(status, message, "invalid_request_error", None, keep_alive=False))
        self.close()
