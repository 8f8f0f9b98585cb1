"""Which paths the gateway forwards to a replica: the OpenAI routes engines serve, normalised. Anything
else is answered by the gateway itself, so no client can reach another route of an engine or of an
external upstream (`/v1/../../admin`)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

# Under a replica's `/v1` base URL. The built-in engine serves the first two; vLLM and external
# OpenAI-compatible upstreams the rest.
FORWARDED_ROUTES = frozenset(
    {
        b"/chat/completions",
        b"/completions",
        b"/embeddings",
        b"/responses",
        b"/rerank",
        b"/score",
        b"/audio/transcriptions",
        b"/audio/translations",
    }
)
_SLASHES = re.compile(rb"/{2,}")


class PathRefused(ValueError):
    """The path has '.' or '..' segments (also percent-encoded): refused, never resolved."""


def forwarded_route(suffix: bytes) -> bytes | None:
    """The normalised route to forward for `suffix` (what follows `/v1`), or None when the gateway does
    not forward it. Raises PathRefused for dot-segments."""
    decoded = unquote_to_bytes(suffix)
    if any(segment in (b".", b"..") for segment in decoded.split(b"/")):
        raise PathRefused(suffix.decode("latin-1")[:200])
    route = _SLASHES.sub(b"/", decoded).rstrip(b"/")
    return route if route in FORWARDED_ROUTES else None
