"""Sliding maximum over integer buckets (scale-down delay), as `aggregation/max/window.go`.

A monotonic deque: a new value evicts older entries that are <= it, so the front is the max.
"""

from __future__ import annotations

import math
from collections import deque


def go_trunc_div(value: int, divisor: int) -> int:
    """Go integer division truncates toward zero (matters for negative Unix times)."""
    q = abs(value) // abs(divisor)
    return q if (value >= 0) == (divisor > 0) else -q


class MaxWindow:
    __slots__ = ("_entries", "size")

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._entries: deque[tuple[int, float]] = deque()

    def record(self, index: int, value: float) -> None:
        entries = self._entries
        while entries and entries[-1][1] <= value:
            entries.pop()
        expired = index - self.size
        while entries and entries[0][0] <= expired:
            entries.popleft()
        entries.append((index, value))

    def current(self) -> float:
        return self._entries[0][1] if self._entries else 0.0


class TimedMaxWindow:
    """MaxWindow indexed by `trunc(unix_seconds / granularity)`; N = ceil(duration / granularity)."""

    __slots__ = ("granularity", "window")

    def __init__(self, duration: float, granularity: float) -> None:
        self.granularity = max(1, int(granularity))
        self.window = MaxWindow(math.ceil(duration / self.granularity))

    def record(self, now: float, value: float) -> None:
        self.window.record(go_trunc_div(math.floor(now), self.granularity), value)

    def current(self) -> float:
        return self.window.current()
