"""Per-key request limits of apiKeyAuth gateways (pure: the clock is a parameter).

A fixed one-minute window per key: at most `limit` requests start in it; the next one is refused with the
seconds until the window ends (the client's `Retry-After`). Simple and exact to explain ("60 per minute
means 60 between :00 and :59 of each window"); the window starts at a key's first request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WINDOW_S = 60.0


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass
class KeyLimiter:
    windows: dict[str, _Window] = field(default_factory=dict)

    def admit(self, key: str, limit: int | None, now: float) -> int | None:
        """None when the request may go; else the whole seconds to wait (>= 1)."""
        if limit is None:
            return None
        window = self.windows.get(key)
        if window is None or now - window.start >= WINDOW_S:
            window = self.windows[key] = _Window(now)
        if window.count >= limit:
            return max(1, math.ceil(window.start + WINDOW_S - now))
        window.count += 1
        return None

    def forget(self, keep: set[str]) -> None:
        """Drop the windows of keys that are gone (revoked), so the map does not grow forever."""
        for key in [k for k in self.windows if k not in keep]:
            del self.windows[key]
