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
_PROMPT = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')


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
    """Keeps the last `TAIL_BYTES` of a body fed to it in pieces."""

    __slots__ = ("tail",)

    def __init__(self) -> None:
        self.tail = bytearray()

    def feed(self, data: bytes) -> None:
        tail = self.tail
        tail += data
        if len(tail) > 2 * TAIL_BYTES:  # trim in batches: amortised O(1) per byte
            del tail[:-TAIL_BYTES]

    def tokens(self) -> tuple[int, int]:
        return usage_tokens(bytes(self.tail[-TAIL_BYTES:]))


def usage_tokens(tail: bytes) -> tuple[int, int]:
    """(prompt, completion) tokens of the last `"usage"` object in `tail`; (0, 0) when there is none."""
    at = tail.rfind(_USAGE)
    if at < 0:
        return 0, 0
    end = tail.find(b"}", at)  # usage's own details objects close before it: read up to the first brace
    window = tail[at : end if end >= 0 else len(tail)]
    prompt = _PROMPT.search(window)
    completion = _COMPLETION.search(window)
    return (int(prompt.group(1)) if prompt else 0, int(completion.group(1)) if completion else 0)
