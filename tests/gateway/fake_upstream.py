"""A small fake OpenAI-compatible model server (raw asyncio, HTTP/1.1 keep-alive) for gateway tests.

Each instance answers as `name` (in the completion text and an `x-replica` header) and can be told to
hold responses, cut a stream after some events, answer a fixed error status, or drop connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    name: str
    hold: asyncio.Event | None = None  # responses wait for this event
    stream_events: int = 3  # SSE events before [DONE]
    cut_after_events: int | None = None  # drop the connection after this many SSE events
    stall_after_events: int | None = None  # send nothing more after this many SSE events (a hung engine)
    event_delay_s: float = 0.0
    status: int = 200  # non-200: answer an OpenAI error body with this status
    drop_connections: bool = False  # accept, read the request, close without answering
    usage: Callable[[Any], dict[str, Any]] | None = None  # a chat completion's usage, from its request body
    requests: list[SeenRequest] = field(default_factory=list)
    connections: int = 0
    in_progress: int = 0
    cancelled: int = 0  # responses cut short because the client went away
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> FakeUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if ":" in h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                parsed = orjson.loads(body) if body else None
                self.requests.append(SeenRequest(method, path, headers, parsed))
                if self.drop_connections:
                    writer.transport.abort()
                    return
                self.in_progress += 1
                try:
                    keep = await self._respond(method, path, parsed, reader, writer)
                finally:
                    self.in_progress -= 1
                if not keep:
                    return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(
        self, method: str, path: str, body: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if self.hold is not None:
            await self.hold.wait()
        if self.status != 200:
            error = {"error": {"message": f"{self.name} says no", "type": "server_error", "code": None}}
            return await _send_json(writer, self.name, self.status, error)
        if path.endswith("/models"):
            return await _send_json(
                writer, self.name, 200, {"object": "list", "data": [{"id": self.name, "object": "model"}]}
            )
        if path.endswith("/embeddings"):
            data = [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}]
            return await _send_json(writer, self.name, 200, {"object": "list", "data": data, "model": body["model"]})
        if path.endswith("/completions") and isinstance(body, dict) and body.get("stream"):
            return await self._stream(path, reader, writer)
        if path.endswith("/chat/completions"):
            message = {"role": "assistant", "content": f"hello from {self.name}"}
            payload: dict[str, Any] = {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": self.name,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
            }  # fmt: skip
            if self.usage is not None:
                payload["usage"] = self.usage(body)
            if isinstance(body, dict) and "echo_size" in body:
                payload["echo"] = "x" * int(body["echo_size"])
            return await _send_json(writer, self.name, 200, payload)
        if path.endswith("/completions"):
            choice = {"index": 0, "text": f"hello from {self.name}", "finish_reason": "stop", "logprobs": None}
            payload = {
                "id": "cmpl-1",
                "object": "text_completion",
                "created": 1,
                "model": self.name,
                "choices": [choice],
            }
            return await _send_json(writer, self.name, 200, payload)
        return await _send_json(
            writer, self.name, 404, {"error": {"message": "no such route", "type": "invalid_request_error"}}
        )

    async def _stream(self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        chat = path.endswith("/chat/completions")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"x-replica: " + self.name.encode() + b"\r\n\r\n"
        )
        for index in range(self.stream_events):
            if self.cut_after_events is not None and index >= self.cut_after_events:
                await writer.drain()
                writer.transport.abort()
                return False
            if self.stall_after_events is not None and index >= self.stall_after_events:
                await writer.drain()
                await reader.read()  # hung until the gateway gives up and closes the connection
                self.cancelled += 1
                return False
            if reader.at_eof() or writer.is_closing():
                self.cancelled += 1
                return False
            token = f"tok{index} "
            choice = {"index": 0, "delta": {"content": token}} if chat else {"index": 0, "text": token}
            obj = "chat.completion.chunk" if chat else "text_completion"
            chunk = {"id": "c-1", "object": obj, "created": 1, "model": self.name, "choices": [choice]}
            _write_chunk(writer, b"data: " + orjson.dumps(chunk) + b"\n\n")
            try:
                await writer.drain()
            except ConnectionError:
                self.cancelled += 1
                return False
            if self.event_delay_s:
                await asyncio.sleep(self.event_delay_s)
        _write_chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%b\r\n" % (len(data), data))


async def _send_json(writer: asyncio.StreamWriter, name: str, status: int, payload: object) -> bool:
    body = orjson.dumps(payload)
    writer.write(
        b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\nx-replica: %b\r\n\r\n%b"
        % (status, len(body), name.encode(), body)
    )
    await writer.drain()
    return True


async def dead_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port
