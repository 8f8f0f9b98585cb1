"""Limits on what a client may make the server hold before its request is even read: the size and count
of request headers (431), the time to send them (408), idle keep-alive connections, and how many
connections may be unfinished (opened, head not yet complete) at once. Shared by the gateway's protocol and
the management API's (tide.api.protocol), so both ports behave alike.

`HeadGuard` feeds the parser in slices no larger than what is left of the head allowance, so one huge
header costs at most `max_head_bytes` of buffering, never the whole header.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

HEADERS_TOO_LARGE = 431
HEAD_TIMEOUT = 408


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int = 64 * 1024  # request line + headers
    max_headers: int = 100
    head_timeout_s: float = 10.0  # from a connection's open, or a request's first byte, to its last header
    idle_timeout_s: float = 75.0  # a keep-alive connection with no request in progress
    max_unfinished: int = 512  # connections whose request head is not complete; more are refused

    def __post_init__(self) -> None:
        for name in ("max_head_bytes", "max_headers", "head_timeout_s", "idle_timeout_s", "max_unfinished"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class UnfinishedCount:
    """Connections of one listener whose request head is not complete."""

    value: int = 0


class _Parser(Protocol):
    def feed_data(self, data: bytes) -> None: ...


class HeadGuard:
    """One connection's head accounting. Call `on_header`, `headers_complete` and `message_complete` from
    the parser callbacks, `closed` from connection_lost; `feed` returns 431 when a limit is passed."""

    def __init__(
        self, limits: ConnectionLimits, unfinished: UnfinishedCount, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._unfinished = unfinished
        self.clock = clock
        self.in_head = True
        self.head_bytes = 0
        self.header_count = 0
        self.too_many_headers = False
        self.refused = False  # answered with an error: the connection is closing
        self.head_started: float | None = clock()  # a new connection owes its first request head
        self.last_active = self.head_started
        self._counted = False
        self._count(True)

    def _count(self, unfinished: bool) -> None:
        if unfinished != self._counted:
            self._counted = unfinished
            self._unfinished.value += 1 if unfinished else -1

    def feed(self, parser: _Parser, data: bytes) -> int | None:
        now = self.clock()
        self.last_active = now
        while data:
            if self.in_head:
                if self.head_started is None:
                    self.head_started = now
                    self._count(True)
                allowance = self.limits.max_head_bytes - self.head_bytes
                if allowance <= 0:
                    return HEADERS_TOO_LARGE
                chunk, data = data[:allowance], data[allowance:]
                self.head_bytes += len(chunk)
            else:
                chunk, data = data, b""
            parser.feed_data(chunk)
            if self.too_many_headers:
                return HEADERS_TOO_LARGE
        if self.in_head and self.head_bytes >= self.limits.max_head_bytes:
            return HEADERS_TOO_LARGE
        return None

    def on_header(self) -> None:
        self.header_count += 1
        if self.header_count > self.limits.max_headers:
            self.too_many_headers = True  # kept: the same feed may complete the message and reset the count

    def headers_complete(self) -> None:
        self.in_head = False
        self.head_started = None
        self._count(False)

    def message_complete(self) -> None:
        self.in_head = True
        self.head_bytes = 0
        self.header_count = 0

    def closed(self) -> None:
        self._count(False)

    def head_overdue(self, now: float) -> bool:
        """A head started (or a connection opened) more than `head_timeout_s` ago is still not complete."""
        return self.head_started is not None and now - self.head_started > self.limits.head_timeout_s

    def idle_for(self, now: float) -> float:
        return now - self.last_active


def refuse_response(status: int) -> bytes:
    """A complete plain response for a request refused before it was parsed; the connection then closes."""
    reasons = {
        HEADERS_TOO_LARGE: (b"Request Header Fields Too Large", b"request headers exceed the server's limits"),
        HEAD_TIMEOUT: (b"Request Timeout", b"request headers not received in time"),
        503: (b"Service Unavailable", b"too many connections with unfinished requests; retry later"),
    }
    reason, message = reasons[status]
    body = b'{"error":{"message":"%s","type":"invalid_request_error","param":null,"code":null}}' % message
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (
        status,
        reason,
        len(body),
        body,
    )
