"""Per-key limits of a gateway's keys (pure: the clock is a parameter).

A fixed one-minute window per key: at most `requests_per_minute` requests start in it, and while the
tokens counted in it (prompt + completion, added when each response ends, from the engine's `usage`) have
reached `tokens_per_minute`, no request starts; the next one is refused with the seconds until the window
ends (the client's `Retry-After`). Simple and exact to explain ("60 per minute means 60 between :00 and
:59 of each window"); the window starts at a key's first request. Tokens are known only after a response,
so the request that crosses the token limit finishes; the ones after it wait for the next window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WINDOW_S = 60.0

REQUESTS = "requests"
TOKENS = "tokens"


@dataclass
class _Window:
    start: float
    count: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class Refusal:
    """Why a request may not start now: which limit (`REQUESTS` or `TOKENS`), and the whole seconds to wait."""

    limit: str
    retry_after_s: int


@dataclass
class KeyLimiter:
    windows: dict[str, _Window] = field(default_factory=dict)

    def _window(self, key: str, now: float) -> _Window:
        window = self.windows.get(key)
        if window is None or now - window.start >= WINDOW_S:
            window = self.windows[key] = _Window(now)
        return window

    def admit(
        self, key: str, requests_per_minute: int | None, now: float, tokens_per_minute: int | None = None
    ) -> Refusal | None:
        """None when the request may go (it is counted); else why not and how long to wait (>= 1 s)."""
        if requests_per_minute is None and tokens_per_minute is None:
            return None
        window = self._window(key, now)
        wait = max(1, math.ceil(window.start + WINDOW_S - now))
        if requests_per_minute is not None and window.count >= requests_per_minute:
            return Refusal(REQUESTS, wait)
        if tokens_per_minute is not None and window.tokens >= tokens_per_minute:
            return Refusal(TOKENS, wait)
        window.count += 1
        return None

    def record_tokens(self, key: str, tokens: int, now: float) -> None:
        """A response of this key ended having used `tokens`: they count in the window open now."""
        if tokens > 0:
            self._window(key, now).tokens += tokens

    def forget(self, keep: set[str]) -> None:
        """Drop the windows of keys that are gone (revoked), so the map does not grow forever."""
        for key in [k for k in self.windows if k not in keep]:
            del self.windows[key]
