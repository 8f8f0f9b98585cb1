"""The client side: a raw asyncio protocol parsing HTTP/1.1 requests with httptools.

Requests on one connection are answered in order (pipelined ones wait their turn); each whole request
(head and body) is handed to the gateway, which either answers at once or proxies it in an Exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from tide.gateway.errors import error_response
from tide.http_limits import HEAD_TIMEOUT, HEADERS_TOO_LARGE, ConnectionLimits, HeadGuard, UnfinishedCount

if TYPE_CHECKING:
    from tide.gateway.exchange import Exchange


REJECT_LINGER_S = 1.0


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
    limits: ConnectionLimits
    unfinished: UnfinishedCount  # this listener's connections with a request head not yet complete

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
        self.guard: HeadGuard | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.handler.unfinished.value >= self.handler.limits.max_unfinished:
            # Too many connections sending nothing useful yet (slowloris): refuse this one, keep serving.
            self.closed = True
            message = "Too many connections with unfinished requests; retry later"
            self.transport.write(error_response(503, message, "server_error", None, keep_alive=False))
            self.transport.close()
            return
        self.guard = HeadGuard(self.handler.limits, self.handler.unfinished)
        self.handler.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.closed or self.guard is None:
            return
        try:
            refused = self.guard.feed(self._parser, data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "Protocol upgrades are not supported")
            return
        except httptools.HttpParserError:
            self._reject(400, "Malformed HTTP request")
            return
        if refused == HEADERS_TOO_LARGE:
            limits = self.handler.limits
            self._reject(
                431,
                f"Request headers exceed {limits.max_head_bytes} bytes or {limits.max_headers} fields",
            )
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
        if self.guard is None:  # refused at connection_made: never opened for the handler
            return
        self.guard.closed()
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
        if self.guard is not None:
            self.guard.on_header()
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.guard is not None:
            self.guard.headers_complete()
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
        if self.guard is not None:
            self.guard.message_complete()
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
        if self.guard is not None:
            self.guard.last_active = time.monotonic()  # idle from the end of the answer, not its start
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

    def check_timeouts(self, now: float) -> None:
        """Called about once a second: a head that takes too long gets 408; a keep-alive connection with
        nothing in progress for `idle_timeout_s` is closed."""
        guard = self.guard
        if guard is None or self.closed:
            return
        if guard.head_overdue(now):
            if guard.head_bytes == 0 and guard.header_count == 0 and not self._busy:
                self.close()  # opened and never sent a byte: nothing to answer
            else:
                self._reject(HEAD_TIMEOUT, f"Request headers not received within {guard.limits.head_timeout_s:g}s")
        elif self._idle() and guard.idle_for(now) > guard.limits.idle_timeout_s:
            self.close()

    def _idle(self) -> bool:
        guard = self.guard
        return not self._busy and not self._pending and guard is not None and guard.head_started is None

    def _reject(self, status: int, message: str) -> None:
        self._pending.clear()
        if self._busy or self.transport is None or self.closed:
            self.close()
            return
        self.write(error_response(status, message, "invalid_request_error", None, keep_alive=False))
        # Closing a socket with unread bytes resets it, and the reset can destroy the answer before the
        # client reads it: end our side, drop what still arrives, and close after a short linger.
        self.closed = True
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(REJECT_LINGER_S, transport.close)
