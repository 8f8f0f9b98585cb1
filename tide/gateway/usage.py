"""Token usage as engines report it, read from the tail of a response (pure).

OpenAI-compatible engines (vLLM, the builtin one) end a completion's JSON body with `"usage":
{"prompt_tokens": P, "completion_tokens": C, ...}`; a stream carries it in its last event when the client
asked (`stream_options: {"include_usage": true}`); embeddings report `prompt_tokens` only. The gateway
keeps the last `TAIL_BYTES` of a successful response as it relays it and reads the last `"usage"` object
in them when the response ends: no JSON parse on the hot path, and memory bounded per request. A response
without usage counts 0 tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAIL_BYTES = 8192
_USAGE = b'"usage"'
_PROMPT = b'"prompt_tokens"'
_COMPLETION = b'"completion_tokens"'
_PROMPT_AND_CACHED = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)[^}]*?"cached_tokens"\s*:\s*(\d+)')


@dataclass
class Usage:
    """Counts of one key (or one gateway): requests that reached a deployment and the tokens their
    responses reported."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class TailScanner:
    """Keeps (references to) the last pieces of a body fed to it, at least `TAIL_BYTES` when there are that
    many: no copy while relaying, one join when the response ends."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        pieces = self.pieces
        pieces.append(data)
        self.size += len(data)
        while self.size - len(pieces[0]) >= TAIL_BYTES:  # the rest still holds the tail: drop the oldest
            self.size -= len(pieces.pop(0))

    def tail(self) -> bytes:
        """The last `TAIL_BYTES` of the body (or all of it when shorter)."""
        pieces = self.pieces
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)[-TAIL_BYTES:]

    def tokens(self) -> tuple[int, int]:
        return usage_tokens(self.tail())


def usage_tokens(tail: bytes) -> tuple[int, int]:
    """(prompt, completion) tokens of the last `"usage"` object in `tail`; (0, 0) when there is none."""
    at = tail.rfind(_USAGE)
    if at < 0:
        return 0, 0
    end = tail.find(b"}", at)  # usage's own details objects close before it: read up to the first brace
    window = tail[at : end + 1 if end >= 0 else len(tail)]
    return _count(window, _PROMPT), _count(window, _COMPLETION)


def usage_cached(tail: bytes) -> tuple[int, int] | None:
    """(prompt tokens, cached prompt tokens) of the last `"usage"` object in `tail`, when it reports cached
    tokens (`"prompt_tokens_details": {"cached_tokens": N}` after `"prompt_tokens"`, with no object closing
    between them: vLLM with `--enable-prompt-tokens-details`, OpenAI); None when it does not (no usage, no
    details, null). One regex search from the usage key (this runs per response checked)."""
    at = tail.rfind(_USAGE)
    if at < 0:
        return None
    found = _PROMPT_AND_CACHED.search(tail, at)
    return None if found is None else (int(found[1]), int(found[2]))


def _count(window: bytes, name: bytes) -> int:
    """The whole number after `"name":` in `window` (plain finds: cheaper than a regex per response)."""
    at = window.find(name)
    if at < 0:
        return 0
    start = at + len(name)
    stop = window.find(b",", start)  # the window ends at usage's closing brace: the last field ends there
    try:
        return max(0, int(window[start : stop if stop >= 0 else len(window)].strip(b" :}\r\n\t")))
    except ValueError:
        return 0
