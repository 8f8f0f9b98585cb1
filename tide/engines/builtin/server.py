"""The HTTP side of the built-in engine: OpenAI routes, health, load and metrics, on Starlette.

The model runs in the scheduler thread; handlers only validate, tokenize, submit and relay outputs, so the
event loop stays free to accept and stream many requests at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tide.engines.builtin import protocol
from tide.engines.builtin.protocol import ParsedRequest, RequestError
from tide.engines.events import emit_event

if TYPE_CHECKING:
    from tide.engines.builtin.loading import LoadedModel
    from tide.engines.builtin.scheduler import BatchScheduler, GenerationOutput

GENERATION_PATHS = {"/v1/chat/completions", "/v1/completions"}


@dataclass
class EngineState:
    served_model_name: str
    started_at: int = field(default_factory=lambda: int(time.time()))
    loaded: LoadedModel | None = None
    scheduler: BatchScheduler | None = None
    draining: bool = False
    in_flight: int = 0
    requests_total: int = 0
    port: int = 0
    parked: int = 0  # the park level (1 or 2) while parked or parking; 0 when serving
    park_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # What a wake rebuilds (set once the model is loaded; see main._load_in_thread).
    make_scheduler: Callable[[], BatchScheduler] | None = None
    reload_weights: Callable[[], Any] | None = None
    # Token counters of schedulers a park retired, so the Prometheus counters never go back.
    retired_prompt_tokens: int = 0
    retired_generated_tokens: int = 0
    _max_prompt_bytes: int | None = None

    @property
    def ready(self) -> bool:
        return self.scheduler is not None

    @property
    def prompt_tokens_total(self) -> int:
        return self.retired_prompt_tokens + (self.scheduler.prompt_tokens_total if self.scheduler else 0)

    @property
    def generated_tokens_total(self) -> int:
        return self.retired_generated_tokens + (self.scheduler.generated_tokens_total if self.scheduler else 0)

    def max_prompt_bytes(self) -> int:
        """More UTF-8 bytes than this cannot fit the context whatever they say (see prompt_byte_bound)."""
        if self._max_prompt_bytes is None:
            assert self.loaded is not None
            self._max_prompt_bytes = protocol.prompt_byte_bound(
                self.loaded.max_model_len, protocol.longest_token_bytes(self.loaded.tokenizer)
            )
        return self._max_prompt_bytes


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(exc: RequestError) -> Response:
    return _json(exc.body(), exc.status)


def _unavailable(message: str) -> Response:
    err = RequestError(message, None, status=503, code="unavailable", error_type="service_unavailable_error")
    return _json(err.body(), 503)


class GenerationGate:
    """ASGI middleware around the generation routes: refuses work while loading or draining, and counts
    in-flight requests from arrival until the last byte is sent (or the client is gone)."""

    def __init__(self, app: ASGIApp, state: EngineState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in GENERATION_PATHS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = None
        if self.state.draining:
            refusal = _unavailable("This engine is draining (shutting down); retry on another replica.")
        elif self.state.parked:
            refusal = _unavailable("This replica is parked (POST /tide/wake wakes it); retry on another replica.")
        elif not self.state.ready:
            refusal = _unavailable("This engine is still loading its model; retry shortly.")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        self.state.in_flight += 1
        self.state.requests_total += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1


def build_app(state: EngineState) -> ASGIApp:
    async def health(_: Request) -> Response:
        if state.draining:
            return _json({"status": "draining"}, 503)
        if state.parked:
            return _json({"status": "parked", "level": state.parked}, 503)
        if not state.ready:
            return _json({"status": "loading"}, 503)
        return _json({"status": "ok"})

    async def load(_: Request) -> Response:
        scheduler = state.scheduler
        return _json(
            {
                "in_flight": state.in_flight,
                "waiting": scheduler.num_waiting if scheduler else 0,
                "running": scheduler.num_running if scheduler else 0,
            }
        )

    async def metrics(_: Request) -> Response:
        return Response(_prometheus_text(state), media_type="text/plain; version=0.0.4")

    async def models(_: Request) -> Response:
        return _json(
            {
                "object": "list",
                "data": [
                    {"id": state.served_model_name, "object": "model", "created": state.started_at, "owned_by": "tide"},
                ],
            }
        )

    async def chat(request: Request) -> Response:
        try:
            body = await _read_body(request)
            protocol.check_model(body, state.served_model_name)
            messages, parsed = protocol.parse_chat(body)
            protocol.check_prompt_bytes(
                sum(len(m["content"].encode()) for m in messages), state.max_prompt_bytes(), _max_len(state), "messages"
            )
            prompt_ids = _chat_prompt_ids(state, messages)
            return _generate(state, parsed, prompt_ids, "messages", chat=True)
        except RequestError as exc:
            return _error(exc)

    async def completions(request: Request) -> Response:
        try:
            body = await _read_body(request)
            protocol.check_model(body, state.served_model_name)
            parsed = protocol.parse_completion(body)
            if parsed.prompt_text is not None:
                size = len(parsed.prompt_text.encode())
                protocol.check_prompt_bytes(size, state.max_prompt_bytes(), _max_len(state), "prompt")
            prompt_ids = _completion_prompt_ids(state, parsed)
            return _generate(state, parsed, prompt_ids, "prompt", chat=False)
        except RequestError as exc:
            return _error(exc)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        err = RequestError(
            f"{exc.detail}", None, status=exc.status_code, code="not_found" if exc.status_code == 404 else None
        )
        return _json(err.body(), exc.status_code)

    async def park(request: Request) -> Response:
        raw_level = request.query_params.get("level", "1")
        raw_timeout = request.query_params.get("timeout", "30")
        try:
            level, timeout = int(raw_level), float(raw_timeout)
        except ValueError:
            level, timeout = 0, 0.0
        if level not in LEVELS or timeout < 0:
            return _park_error("`level` must be 1 or 2 and `timeout` seconds >= 0", 400, "invalid_request")
        return await park_engine(state, level, timeout)

    async def wake(_: Request) -> Response:
        return await wake_engine(state)

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/load", load, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/tide/park", park, methods=["POST"]),
            Route("/tide/wake", wake, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    return GenerationGate(app, state)


LEVELS = (1, 2)


def _park_error(message: str, status: int, code: str) -> Response:
    return _json({"error": {"message": message, "type": "park_error", "param": None, "code": code}}, status)


async def park_engine(state: EngineState, level: int, timeout: float) -> Response:
    """Refuse new work, let in-flight requests finish (up to `timeout` s), then park at `level`."""
    from tide.engines.builtin import parking

    async with state.park_lock:
        if state.parked:
            return _json({"status": "parked", "level": state.parked})
        if state.draining:
            return _park_error("this engine is draining (shutting down): it cannot park", 409, "draining")
        if state.scheduler is None or state.loaded is None:
            return _park_error("this engine is still loading its model: it cannot park yet", 409, "loading")
        state.parked = level  # from here on the gate refuses new requests
        emit_event("parking", level=level)
        deadline = time.monotonic() + timeout
        while state.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if state.in_flight > 0:
            state.parked = 0
            emit_event("ready", port=state.port)
            return _park_error(f"{state.in_flight} request(s) still in flight after {timeout:g} s", 409, "busy")
        scheduler, state.scheduler = state.scheduler, None
        state.retired_prompt_tokens += scheduler.prompt_tokens_total
        state.retired_generated_tokens += scheduler.generated_tokens_total
        park = parking.park_level1 if level == 1 else parking.park_level2
        moved = await asyncio.to_thread(park, state.loaded, scheduler)
        # What the parked process holds in host memory: its weights at level 1 (moved there, or already
        # there on CPU), none at level 2. The controller bounds parked replicas by it.
        host_bytes = parking.weight_bytes(state.loaded.model) if level == 1 else 0
        emit_event("parked", level=level, hostBytes=host_bytes, **moved.to_json())
        return _json({"status": "parked", "level": level, "hostBytes": host_bytes, **moved.to_json()})


async def wake_engine(state: EngineState) -> Response:
    """Bring a parked engine back: weights onto the device (or read again), a fresh scheduler."""
    from tide.engines.builtin import parking
    from tide.engines.builtin.loading import warm_up

    async with state.park_lock:
        level = state.parked
        if not level:
            return _json({"status": "ok", "woke": False})
        loaded, make, reload = state.loaded, state.make_scheduler, state.reload_weights
        assert loaded is not None and make is not None and reload is not None
        emit_event("waking", level=level)

        def wake() -> tuple[parking.Moved, BatchScheduler]:
            if level == 1:
                moved = parking.wake_level1(loaded)
            else:
                moved = parking.wake_level2(loaded, reload)
                warm_up(loaded)
            scheduler = make()
            scheduler.start()
            return moved, scheduler

        try:
            moved, scheduler = await asyncio.to_thread(wake)
        except Exception as exc:  # e.g. the device is full: stay parked and say why
            emit_event("wake_failed", error=str(exc))
            return _park_error(f"could not wake: {type(exc).__name__}: {exc}", 500, "wake_failed")
        state.scheduler = scheduler
        state.parked = 0
        emit_event("ready", port=state.port, woke=level, **moved.to_json())
        return _json({"status": "ok", "woke": True, "level": level, **moved.to_json()})


async def _read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"The request body is not valid JSON: {exc}", None) from exc
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.", None)
    return body


def _max_len(state: EngineState) -> int:
    assert state.loaded is not None
    return state.loaded.max_model_len


def _chat_prompt_ids(state: EngineState, messages: list[dict[str, str]]) -> list[int]:
    assert state.loaded is not None
    tokenizer = state.loaded.tokenizer
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # a template may reject a role order (e.g. no system message allowed)
        raise RequestError(f"The model's chat template rejected `messages`: {exc}", "messages") from exc
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _completion_prompt_ids(state: EngineState, parsed: ParsedRequest) -> list[int]:
    assert state.loaded is not None
    tokenizer = state.loaded.tokenizer
    if parsed.prompt_ids is not None:
        vocab = len(tokenizer)
        if any(t < 0 or t >= vocab for t in parsed.prompt_ids):
            raise RequestError(f"`prompt` token ids must be in [0, {vocab}).", "prompt")
        return parsed.prompt_ids
    ids = list(tokenizer(parsed.prompt_text or "", add_special_tokens=True)["input_ids"])
    if not ids:
        raise RequestError("`prompt` is empty; give at least one character.", "prompt")
    return ids


def _generate(
    state: EngineState, parsed: ParsedRequest, prompt_ids: list[int], prompt_param: str, *, chat: bool
) -> Response:
    from tide.engines.builtin.scheduler import SamplingParams

    assert state.scheduler is not None
    scheduler = state.scheduler
    max_tokens = protocol.resolve_max_tokens(parsed.max_tokens, len(prompt_ids), scheduler.max_model_len, prompt_param)
    params = SamplingParams(
        max_tokens=max_tokens, temperature=parsed.temperature, top_p=parsed.top_p, seed=parsed.seed, stop=parsed.stop
    )
    relay = _Relay(scheduler, prompt_ids, params)
    rid = protocol.new_id("chatcmpl" if chat else "cmpl")
    name = state.served_model_name
    if parsed.stream:
        return StreamingResponse(
            _sse(relay, rid, name, len(prompt_ids), parsed.include_usage, chat=chat),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    return _Collected(relay, rid, name, len(prompt_ids), chat=chat)  # type: ignore[return-value]


class _Relay:
    """Carries one request's outputs from the scheduler thread onto the event loop. Submits on first use,
    so a stream whose client vanished before it started never reaches the model."""

    def __init__(self, scheduler: BatchScheduler, prompt_ids: list[int], params: Any) -> None:
        self._scheduler = scheduler
        self._prompt_ids = prompt_ids
        self._params = params
        self.completion_tokens = 0

    async def outputs(self) -> AsyncIterator[GenerationOutput]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[GenerationOutput] = asyncio.Queue()

        def deliver(out: GenerationOutput) -> None:  # runs on the scheduler thread
            loop.call_soon_threadsafe(queue.put_nowait, out)

        seq = self._scheduler.submit(self._prompt_ids, self._params, deliver)
        finished = False
        try:
            while True:
                out = await queue.get()
                self.completion_tokens += out.new_tokens
                finished = out.finish_reason is not None
                yield out
                if finished:
                    return
        finally:
            if not finished:
                seq.cancel()  # the client went away: free the batch slot


class _Collected:
    """A non-streaming response: an ASGI app that waits for the whole generation, then answers."""

    def __init__(self, relay: _Relay, rid: str, model: str, prompt_tokens: int, *, chat: bool) -> None:
        self._relay, self._rid, self._model, self._prompt_tokens, self._chat = relay, rid, model, prompt_tokens, chat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts: list[str] = []
        finish = "stop"
        error: str | None = None
        async for out in self._relay.outputs():
            parts.append(out.text)
            if out.finish_reason is not None:
                finish, error = out.finish_reason, out.error
        if error is not None:
            err = RequestError(error, None, status=500, code="internal_error", error_type="server_error")
            response = _json(err.body(), 500)
        else:
            use = protocol.usage(self._prompt_tokens, self._relay.completion_tokens)
            make = protocol.chat_response if self._chat else protocol.completion_response
            response = _json(make(self._rid, self._model, "".join(parts), finish, use))
        await response(scope, receive, send)


def _sse_line(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _sse(
    relay: _Relay, rid: str, model: str, prompt_tokens: int, include_usage: bool, *, chat: bool
) -> AsyncIterator[bytes]:
    if chat:
        yield _sse_line(protocol.chat_chunk(rid, model, {"role": "assistant", "content": ""}, None))
    async for out in relay.outputs():
        if out.error is not None:
            yield _sse_line(
                {"error": {"message": out.error, "type": "server_error", "param": None, "code": "internal_error"}}
            )
            break
        final = out.finish_reason is not None
        if out.text or final:
            use = protocol.usage(prompt_tokens, relay.completion_tokens) if final and not include_usage else None
            if chat:
                delta = {"content": out.text} if out.text else {}
                yield _sse_line(protocol.chat_chunk(rid, model, delta, out.finish_reason, use))
            else:
                yield _sse_line(protocol.completion_chunk(rid, model, out.text, out.finish_reason, use))
        if final and include_usage:
            use = protocol.usage(prompt_tokens, relay.completion_tokens)
            if chat:
                yield _sse_line(protocol.chat_chunk(rid, model, {}, None, use, empty=True))
            else:
                yield _sse_line(protocol.completion_chunk(rid, model, "", None, use, empty=True))
    yield b"data: [DONE]\n\n"


def _prometheus_text(state: EngineState) -> str:
    scheduler = state.scheduler
    name = state.served_model_name.replace("\\", "\\\\").replace('"', '\\"')
    label = f'{{model="{name}"}}'
    rows: list[tuple[str, str, str, float]] = [
        ("tide_engine_in_flight_requests", "gauge", "Generation requests being handled now.", state.in_flight),
        (
            "tide_engine_waiting_requests",
            "gauge",
            "Requests queued for a batch slot.",
            scheduler.num_waiting if scheduler else 0,
        ),
        (
            "tide_engine_running_requests",
            "gauge",
            "Sequences in the running batch.",
            scheduler.num_running if scheduler else 0,
        ),
        ("tide_engine_requests_total", "counter", "Generation requests accepted.", state.requests_total),
        (
            "tide_engine_prompt_tokens_total",
            "counter",
            "Prompt tokens prefilled.",
            state.prompt_tokens_total,
        ),
        (
            "tide_engine_generated_tokens_total",
            "counter",
            "Tokens generated.",
            state.generated_tokens_total,
        ),
        (
            "tide_engine_ready",
            "gauge",
            "1 once the model is loaded and not draining.",
            1 if state.ready and not state.draining else 0,
        ),
        ("tide_engine_parked", "gauge", "The park level while parked (1 or 2), 0 when serving.", state.parked),
    ]
    lines: list[str] = []
    for metric, kind, help_text, value in rows:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", f"{metric}{label} {value:g}"]
    return "\n".join(lines) + "\n"
