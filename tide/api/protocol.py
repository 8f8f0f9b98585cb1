"""The management API's HTTP protocol: uvicorn's httptools protocol with the gateway's connection limits
(tide.http_limits): header size and count (431), a deadline for the request head (408), a cap on
connections with an unfinished head (503). Idle keep-alive connections use uvicorn's own keep-alive
timeout, set from the same limits."""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tide.http_limits import (
    HEAD_TIMEOUT,
    ConnectionLimits,
    HeadGuard,
    UnfinishedCount,
    refuse_response,
)


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)`: one per listener (it carries the listener's count)."""
    unfinished = UnfinishedCount()

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        guard: HeadGuard | None = None
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if unfinished.value >= limits.max_unfinished:
                self.transport = transport
                _refuse(transport, 503)
                return
            super().connection_made(transport)
            self.guard = HeadGuard(limits, unfinished)
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(limits.head_timeout_s, self._head_deadline)

        def _head_deadline(self) -> None:
            self._head_timer = None
            guard = self.guard
            if guard is None or self.transport.is_closing():
                return
            now = guard.clock()
            if guard.head_overdue(now):
                if guard.head_bytes == 0 and self.cycle is None:
                    self.transport.close()  # opened and never sent a byte: nothing to answer
                else:
                    guard.refused = True
                    _refuse(self.transport, HEAD_TIMEOUT)
            elif guard.head_started is not None:
                remaining = limits.head_timeout_s - (now - guard.head_started)
                self._head_timer = self.loop.call_later(max(remaining, 0.01), self._head_deadline)

        def data_received(self, data: bytes) -> None:
            guard = self.guard
            if guard is None or guard.refused:
                return  # answered and closing: what still arrives is dropped
            self._unset_keepalive_if_required()
            try:
                refused = guard.feed(self.parser, data)
            except httptools.HttpParserError:
                self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:
                self.send_400_response("Protocol upgrades are not supported.")
                return
            if refused is not None:
                guard.refused = True
                _refuse(self.transport, refused)
                return
            if guard.head_started is not None:
                self._arm_head_timer()

        def on_header(self, name: bytes, value: bytes) -> None:
            if self.guard is not None:
                self.guard.on_header()
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self.guard is not None:
                self.guard.headers_complete()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            if self.guard is not None:
                self.guard.message_complete()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            if self.guard is None:  # refused at connection_made
                return
            self.guard.closed()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """What `uvicorn.Config` needs for the management API to apply `limits`."""
    return {"http": guarded_protocol(limits), "timeout_keep_alive": limits.idle_timeout_s}


def _refuse(transport: asyncio.Transport, status: int) -> None:
    """Answer and end the connection. Closing with unread bytes would reset it and could destroy the
    answer before the client reads it: end our side, drop what arrives (the caller), close after a linger."""
    transport.write(refuse_response(status))
    if transport.can_write_eof():
        transport.write_eof()
    asyncio.get_running_loop().call_later(1.0, transport.close)
