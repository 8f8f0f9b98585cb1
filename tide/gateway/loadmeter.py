"""The gateway's per-second load signal: in flight + queued, time-weighted over the last second.

The autoscaler's input is the time average of a deployment's load over each second (what Knative's
queue-proxy reports, and what `tide sim` records), not a sample taken once a second: a request that
lasted 0.2 s counts 0.2, one that straddled the sample counts for the time it was there. The meter is
told each change of the level; `averages(now)` reads the trailing window. Pure: the clock is a parameter.

The trailing second is kept as slots of 0.1 s (O(1) per change); the slot the window starts in is
counted pro rata, so a level held for the whole second reads exactly as itself.
"""

from __future__ import annotations

import math

SLOT_S = 0.1
WINDOW_S = 1.0
SLOTS = 11  # the window's 10 slots and the one it starts in
_DIGITS = 9  # averages are rounded to 1e-9 (float noise in the slot sums; see averages)


class LoadMeter:
    __slots__ = ("_areas", "_born", "_queued_areas", "_since", "_slot", "_zero_since", "level", "queued")

    def __init__(self, now: float) -> None:
        self.level = 0  # in flight + queued now
        self.queued = 0  # of which queued
        self._born = now
        self._zero_since: float | None = now  # since when the level has been 0 (None while it is not)
        self._since = now
        self._slot = math.floor(now / SLOT_S)
        self._areas = [0.0] * SLOTS
        self._queued_areas = [0.0] * SLOTS

    def set(self, now: float, level: int, queued: int) -> None:
        """The level changed at `now` (call after every change of in flight or the queue)."""
        if now > self._since:
            self._advance(now)
        if level == 0:
            if self.level != 0 or self._zero_since is None:
                self._zero_since = now
        else:
            self._zero_since = None
        self.level = level
        self.queued = queued

    def quiet(self, now: float) -> bool:
        """The level has been 0 for at least the whole window: both averages read 0 (a cheap check)."""
        return self._zero_since is not None and now - self._zero_since >= WINDOW_S

    def averages(self, now: float) -> tuple[float, float]:
        """(in flight + queued, queued), each averaged over the trailing window ending at `now`."""
        self._advance(now)
        if self.quiet(now):
            # 0 for the whole window. Said exactly: the pro-rata share of the slot the window starts in
            # would still count a sliver of the load before it (0.02 at the moment the meter turns quiet),
            # and a snapshot that stops recomputing a quiet deployment would keep that sliver for good.
            return 0.0, 0.0
        start = max(self._born, now - WINDOW_S)
        span = now - start
        if span <= 0:
            return float(self.level), float(self.queued)
        oldest = self._slot - SLOTS + 1  # the slot the window starts in (at most)
        i = oldest % SLOTS
        # The part of the oldest slot before the window start does not count (pro rata within the slot).
        share = max(0.0, min(1.0, ((oldest + 1) * SLOT_S - start) / SLOT_S))
        load = sum(self._areas) - self._areas[i] * (1.0 - share)
        queued = sum(self._queued_areas) - self._queued_areas[i] * (1.0 - share)
        # Float areas added and taken away can leave -1e-17 where the load was 0, and 1.0000000000000002
        # where a level of 1 was held all along, which `ceil(observed / target)` reads as a second replica
        # (it started one beside the first request at zero): rounded to 1e-9, far below any real change.
        return max(0.0, round(load / span, _DIGITS)), max(0.0, round(queued / span, _DIGITS))

    def _advance(self, now: float) -> None:
        areas, queued_areas = self._areas, self._queued_areas
        level, queued = self.level, self.queued
        slot = math.floor(now / SLOT_S)
        if slot == self._slot:
            dt = now - self._since
            i = slot % SLOTS
            areas[i] += level * dt
            queued_areas[i] += queued * dt
            self._since = now
            return
        if slot < self._slot:
            return  # the clock went back: ignore
        # Close the current slot, fill whole slots passed at the constant level, open the new one.
        i = self._slot % SLOTS
        dt = (self._slot + 1) * SLOT_S - self._since
        areas[i] += level * dt
        queued_areas[i] += queued * dt
        for passed in range(max(self._slot + 1, slot - SLOTS + 1), slot):
            areas[passed % SLOTS] = level * SLOT_S
            queued_areas[passed % SLOTS] = queued * SLOT_S
        i = slot % SLOTS
        dt = now - slot * SLOT_S
        areas[i] = level * dt
        queued_areas[i] = queued * dt
        self._slot = slot
        self._since = now
