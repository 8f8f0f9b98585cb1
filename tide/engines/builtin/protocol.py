"""OpenAI request validation and response shapes for /v1/chat/completions and /v1/completions.

Validation is by hand (no pydantic) so every error names the exact field, in OpenAI's error shape.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_TOKENS = 64
MAX_STOP_STRINGS = 16
CHAT_ROLES = {"system", "developer", "user", "assistant", "tool"}


class RequestError(Exception):
    """A request the engine will not run; becomes an OpenAI-shaped error response."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code
        self.error_type = error_type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ParsedRequest:
    """What the engine needs from either route: prompt (text or ids) and sampling settings."""

    prompt_text: str | None
    prompt_ids: list[int] | None
    max_tokens: int | None  # None: the default, clipped to the context left
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def check_model(body: dict[str, Any], served_name: str) -> None:
    model = body.get("model")
    if model is not None and model != served_name:
        raise RequestError(
            f"The model `{model}` does not exist; this engine serves `{served_name}`.",
            "model",
            status=404,
            code="model_not_found",
        )


def parse_chat(body: dict[str, Any]) -> tuple[list[dict[str, str]], ParsedRequest]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` is required: a non-empty list of {role, content} objects.", "messages")
    normalised: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(f"messages[{i}] must be an object with `role` and `content`.", f"messages[{i}]")
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise RequestError(
                f"messages[{i}].role must be one of {sorted(CHAT_ROLES)}, got {role!r}.", f"messages[{i}].role"
            )
        normalised.append({"role": str(role), "content": _message_text(message.get("content"), i)})
    return normalised, _parse_common(body, max_tokens_fields=("max_completion_tokens", "max_tokens"))


def parse_completion(body: dict[str, Any]) -> ParsedRequest:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        text, ids = prompt, None
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        text, ids = None, [int(t) for t in prompt]
    elif isinstance(prompt, list):
        raise RequestError(
            "`prompt` must be one string or one list of token ids; send batches as separate requests.", "prompt"
        )
    else:
        raise RequestError("`prompt` is required: a string (or a list of token ids).", "prompt")
    if body.get("echo"):
        raise RequestError("`echo` is not supported by this engine.", "echo")
    if body.get("suffix"):
        raise RequestError("`suffix` is not supported by this engine.", "suffix")
    common = _parse_common(body, max_tokens_fields=("max_tokens",))
    return ParsedRequest(
        text,
        ids,
        common.max_tokens,
        common.temperature,
        common.top_p,
        common.seed,
        common.stop,
        common.stream,
        common.include_usage,
    )


def _message_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(
                    f"messages[{index}].content[{j}]: only text parts ({{type: 'text', text: ...}}) are supported.",
                    f"messages[{index}].content[{j}]",
                )
            parts.append(part["text"])
        return "".join(parts)
    raise RequestError(
        f"messages[{index}].content must be a string or a list of text parts.", f"messages[{index}].content"
    )


def _parse_common(body: dict[str, Any], *, max_tokens_fields: tuple[str, ...]) -> ParsedRequest:
    max_tokens: int | None = None
    for name in max_tokens_fields:
        if body.get(name) is not None:
            max_tokens = _int_field(body, name, minimum=1)
            break
    temperature = _number_field(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number_field(body, "top_p", 1.0, 0.0, 1.0)
    if top_p <= 0.0:
        raise RequestError("`top_p` must be greater than 0 and at most 1.", "top_p")
    seed = _int_field(body, "seed") if body.get("seed") is not None else None
    n = body.get("n")
    if n is not None and n != 1:
        raise RequestError("`n` must be 1: this engine returns one choice per request.", "n")
    if body.get("logprobs") not in (None, False, 0):
        raise RequestError("`logprobs` is not supported by this engine.", "logprobs")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("`stream` must be true or false.", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestError('`stream_options` must be an object such as {"include_usage": true}.', "stream_options")
    include_usage = bool((options or {}).get("include_usage", False))
    return ParsedRequest(None, None, max_tokens, temperature, top_p, seed, _stop_field(body), stream, include_usage)


def _stop_field(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise RequestError("`stop` must be a non-empty string or a list of non-empty strings.", "stop")
    if len(stop) > MAX_STOP_STRINGS:
        raise RequestError(f"`stop` may hold at most {MAX_STOP_STRINGS} strings.", "stop")
    return tuple(stop)


def _int_field(body: dict[str, Any], name: str, minimum: int | None = None) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(f"`{name}` must be an integer, got {value!r}.", name)
    if minimum is not None and value < minimum:
        raise RequestError(f"`{name}` must be at least {minimum}, got {value}.", name)
    return value


def _number_field(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise RequestError(f"`{name}` must be a number between {low:g} and {high:g}, got {value!r}.", name)
    if not low <= value <= high:
        raise RequestError(f"`{name}` must be between {low:g} and {high:g}, got {value}.", name)
    return float(value)


def longest_token_bytes(tokenizer: Any) -> int:
    """The most UTF-8 bytes one vocabulary entry spells (byte-level markers count double: an overestimate,
    which only makes the prompt bound below more generous)."""
    return max((len(str(token).encode()) for token in tokenizer.get_vocab()), default=1) or 1


def prompt_byte_bound(max_model_len: int, longest_token: int) -> int:
    """A prompt of more bytes than this has more than `max_model_len` tokens: each token spells at most
    `longest_token` bytes. Checked before tokenizing, so a multi-megabyte prompt is refused in
    microseconds instead of holding the replica while millions of tokens are counted."""
    return max_model_len * longest_token


def check_prompt_bytes(size: int, bound: int, max_model_len: int, prompt_param: str) -> None:
    if size > bound:
        raise RequestError(
            f"This model's maximum context length is {max_model_len} tokens; the {prompt_param} has {size} bytes, "
            f"more than that many tokens can hold (at most {bound} bytes). Shorten the {prompt_param}.",
            prompt_param,
            code="context_length_exceeded",
        )


def resolve_max_tokens(requested: int | None, prompt_len: int, max_model_len: int, prompt_param: str) -> int:
    room = max_model_len - prompt_len
    if room < 1:
        raise RequestError(
            f"This model's maximum context length is {max_model_len} tokens; the {prompt_param} has "
            f"{prompt_len} tokens. Shorten the {prompt_param}.",
            prompt_param,
            code="context_length_exceeded",
        )
    if requested is None:
        return min(DEFAULT_MAX_TOKENS, room)
    if requested > room:
        raise RequestError(
            f"This model's maximum context length is {max_model_len} tokens; the {prompt_param} has {prompt_len} "
            f"tokens and max_tokens asks for {requested} more. Lower max_tokens to at most {room}.",
            "max_tokens",
            code="context_length_exceeded",
        )
    return requested


# ---- response shapes ------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_response(rid: str, model: str, text: str, finish: str, use: dict[str, int]) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
        ],
        "usage": use,
    }


def chat_chunk(
    rid: str,
    model: str,
    delta: dict[str, Any],
    finish: str | None,
    use: dict[str, int] | None = None,
    *,
    empty: bool = False,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [] if empty else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if use is not None:
        chunk["usage"] = use
    return chunk


def completion_response(rid: str, model: str, text: str, finish: str, use: dict[str, int]) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
        "usage": use,
    }


def completion_chunk(
    rid: str, model: str, text: str, finish: str | None, use: dict[str, int] | None = None, *, empty: bool = False
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [] if empty else [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
    }
    if use is not None:
        chunk["usage"] = use
    return chunk
