"""Knative's 1-second metric buckets: linear and weighted-exponential window averages.

Mirrors `pkg/autoscaler/aggregation/bucketing.go`. Time is float seconds (any epoch); the
granularity is fixed at 1 s as in Knative (`BucketSize`).
"""

from __future__ import annotations

import math

from tide.autoscale.targets import round_digits

WEIGHT_PRECISION = 0.9999
_NEVER = -math.inf


def smoothing_coefficient(num_buckets: int) -> float:
    """Decay multiplier so that the window's weights sum to ~0.9999, floored at 0.2."""
    return max(1.0 - (1.0 - WEIGHT_PRECISION) ** (1.0 / num_buckets), 0.2)


class TimedBuckets:
    """Ring of 1 s buckets over a window; `average` is Knative's linear WindowAverage.

    A running total keeps `record` and `average` O(1) in the steady state (one record a second).
    """

    __slots__ = ("_buckets", "_first", "_last", "_nb", "_total", "window")
    algorithm = "linear"

    def __init__(self, window: float) -> None:
        self.window = float(window)
        self._nb = max(1, math.ceil(self.window))
        self._buckets = [0.0] * self._nb
        self._first = _NEVER
        self._last = _NEVER
        self._total = 0.0

    @property
    def last_write(self) -> float:
        return self._last

    def is_empty(self, now: float) -> bool:
        """No write within the window (Knative's ErrNoData condition)."""
        return math.floor(now) - self._last > self.window

    def record(self, now: float, value: float) -> None:
        bucket_time = math.floor(now)
        buckets = self._buckets
        nb = self._nb
        if bucket_time == self._last + 1:
            # The steady state (one record a second): the new slot's old value leaves the window.
            idx = bucket_time % nb
            self._total += value - buckets[idx]
            buckets[idx] = value
            self._last = bucket_time
            return
        if bucket_time != self._last:
            if bucket_time + self.window <= self._last:
                return  # a whole window older than the newest write: ignored
            if self._first == _NEVER or self._first > bucket_time:
                self._first = bucket_time
            if bucket_time > self._last:
                if bucket_time - self._last >= self.window:
                    # No writes for a whole window: start afresh.
                    self._first = bucket_time
                    for i in range(nb):
                        buckets[i] = 0.0
                    self._total = 0.0
                else:
                    # Clear the slots skipped since the last write (they hold data a window old).
                    for t in range(int(self._last) + 1, int(bucket_time) + 1):
                        idx = t % nb
                        self._total -= buckets[idx]
                        buckets[idx] = 0.0
                self._last = bucket_time
        buckets[int(bucket_time) % nb] += value
        self._total += value

    def average(self, now: float) -> float:
        now_b = math.floor(now)
        last = self._last
        d = now_b - last
        nb = self._nb
        if d <= 0:
            valid = last - self._first + 1
            value = self._total / (valid if valid < nb else nb)
        elif d < self.window:
            value = self._total
            buckets = self._buckets
            for t in range(int(last) + 1, int(now_b) + 1):
                value -= buckets[t % nb]
            valid = last - self._first + 1
            value /= valid if valid < nb - d else nb - d
        else:
            return 0.0
        # roundToNDigits(6): the fast path is exact for the non-negative values we average.
        return math.floor(value * 1e6 + 0.5) / 1e6 if value >= 0 else round_digits(value)

    def resized(self, window: float, algorithm: str | None = None) -> TimedBuckets:
        """A copy with another window length (and/or algorithm) keeping the newest seconds."""
        fresh = make_buckets(window, algorithm or self.algorithm)
        if self._last == _NEVER:
            return fresh
        keep = min(self._nb, fresh._nb)
        start = int(max(self._first, self._last - keep + 1))
        for t in range(start, int(self._last) + 1):
            value = self._buckets[t % self._nb]
            fresh._buckets[t % fresh._nb] = value
            fresh._total += value
        fresh._first, fresh._last = float(start), self._last
        return fresh


class WeightedBuckets(TimedBuckets):
    """Same ring, averaged with exponentially decaying weights (not normalised, as in Knative)."""

    __slots__ = ("smoothing",)
    algorithm = "weighted"

    def __init__(self, window: float) -> None:
        super().__init__(window)
        self.smoothing = smoothing_coefficient(self._nb)

    def average(self, now: float) -> float:
        now_b = math.floor(now)
        d = now_b - self._last
        if d > self.window:
            return 0.0
        nb = self._nb
        empty = max(0, int(d))
        m = self.smoothing
        multiplier = m
        if empty > 0:
            multiplier *= math.pow(1.0 - m, empty)
        start = int(self._last)
        result = 0.0
        for i in range(nb - empty):
            result += self._buckets[(start - i) % nb] * multiplier
            multiplier *= 1.0 - m
        return result


def make_buckets(window: float, algorithm: str) -> TimedBuckets:
    return WeightedBuckets(window) if algorithm == "weighted" else TimedBuckets(window)
