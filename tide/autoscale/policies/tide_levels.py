"""The `tide` policy's learned burst hold: how long to keep each replica level above one through a lull.

Pure. A deployment's bursts come back after lulls of their own typical length (Azure code: bursts of
hundreds of requests a minute after 1-3 minute lulls; GenTD26: a second image of a session while the
first is drawn). For every replica level k >= 2 (the replicas the work in service needs, a spare at
concurrency 1 included) the policy records the level's gaps: from the second the need drops below k to
the second it is back at k or above. When the need drops, level k is held as long as the plan from that
level's own past gaps longer than the time already spent below it says (`plan_gap` of tide_gaps.py, the
keep-alive's model, without pre-warm): a replica-second held against `miss_cost` replica-seconds for a
return that finds the level missing (its requests wait a cold start).

Levels with fewer than `min_gaps` gaps of that length are not held here (the policy's fixed burst hold
applies to them).
"""

from __future__ import annotations

from tide.autoscale.policies.tide_gaps import NEVER, GapHistory, plan_gap

MAX_LEVEL = 256  # levels above this one are held by the fixed burst hold only (bounds the work per tick)
_EPS = 1e-9


class LevelHolds:
    """Per-level gap histories and the current hold of each level that is down."""

    __slots__ = ("_down", "_gaps", "_holds", "_need", "keep", "max_replans", "min_gaps")

    def __init__(self, *, min_gaps: int = 5, keep: int = 200, max_replans: int = 8) -> None:
        self.min_gaps = min_gaps
        self.keep = keep
        self.max_replans = max_replans
        self._need = 0
        self._down: dict[int, float] = {}  # level -> when the need dropped below it
        self._gaps: dict[int, GapHistory] = {}
        # Levels down and still possibly held: level -> (hold: seconds after the drop, plans made).
        self._holds: dict[int, tuple[float, int]] = {}

    @property
    def need(self) -> int:
        return self._need

    def gaps(self, level: int) -> int:
        """How many gaps of `level` are recorded."""
        history = self._gaps.get(level)
        return len(history) if history is not None else 0

    def update(self, now: float, need: int) -> None:
        """The replicas the work needs at `now` (decisions in time order)."""
        need = max(0, min(need, MAX_LEVEL))
        previous = self._need
        if need > previous:
            for level in range(max(2, previous + 1), need + 1):
                since = self._down.pop(level, None)
                self._holds.pop(level, None)
                if since is not None:
                    history = self._gaps.get(level)
                    if history is None:
                        history = self._gaps[level] = GapHistory(self.keep)
                    history.add(now - since)
        elif need < previous:
            for level in range(max(2, need + 1), previous + 1):
                self._down[level] = now
                self._holds[level] = (0.0, 0)  # not planned yet
        self._need = need

    def held(self, now: float, cold_start: float, miss_cost: float) -> int:
        """The highest level worth holding now (0 when none above the need is)."""
        if not self._holds:
            return 0
        for level in sorted(self._holds, reverse=True):
            if self._holds_level(level, now, cold_start, miss_cost):
                return level
        return 0

    def _holds_level(self, level: int, now: float, cold_start: float, miss_cost: float) -> bool:
        hold, plans = self._holds[level]
        elapsed = max(0.0, now - self._down[level])
        if elapsed < hold - _EPS:
            return True
        history = self._gaps.get(level)
        longer = history.longer_than(elapsed) if history is not None else None
        if longer is None or len(longer) < self.min_gaps or plans >= self.max_replans:
            del self._holds[level]  # not held again in this gap: fewer gaps were this long, or planned out
            return False
        hold = plan_gap(longer, elapsed, cold_start, miss_cost, allow_prewarm=False).hold
        if hold == NEVER or hold <= elapsed + _EPS:
            del self._holds[level]
            return False
        self._holds[level] = (hold, plans + 1)
        return True
