"""The `tide` policy's idle-gap model: what to do with the last replica when a deployment goes empty.

Pure. The policy records every idle gap (from the second the deployment's load drops to zero to the
second a request arrives again), as in "Serverless in the Wild" (Shahrad et al., ATC'20), and, when it
goes empty, plans from the recent gaps that are longer than the time already spent idle:

* keep-alive: hold one replica warm until `hold` seconds into the gap (past most gaps' end), or
* stop and pre-warm: stop now and start one replica `prewarm` seconds into the gap, one cold start
  ahead of the predictable next arrival (timers, regular jobs); or stop without a pre-warm.

The plan minimises the expected replica-seconds plus `miss_cost` replica-seconds for every request that
waits a full cold start (pro rata for a shorter wait): the user-facing knob `coldRequestCost`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np

NEVER = math.inf
_EPS = 1e-9


class GapPlan(NamedTuple):
    """`hold`: stay warm until this many seconds into the gap (0: stop now). `prewarm`: once stopped,
    start one replica this many seconds into the gap (NEVER: wait for a request)."""

    hold: float
    prewarm: float
    expected_cost: float
    samples: int  # gaps the plan was made from (longer than the time already idle)


class GapHistory:
    """The last `keep` idle gaps, in seconds."""

    __slots__ = ("_gaps", "_sorted")

    def __init__(self, keep: int = 200) -> None:
        self._gaps: deque[float] = deque(maxlen=keep)
        self._sorted: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._gaps)

    def add(self, gap: float) -> None:
        self._gaps.append(max(0.0, gap))
        self._sorted = None

    def longer_than(self, elapsed: float) -> np.ndarray:
        """The recorded gaps longer than `elapsed`, sorted."""
        if self._sorted is None:
            self._sorted = np.sort(np.fromiter(self._gaps, dtype=float, count=len(self._gaps)))
        values = self._sorted
        return values[np.searchsorted(values, elapsed, side="right") :]


def plan_gap(
    gaps: np.ndarray,
    elapsed: float,
    cold_start: float,
    miss_cost: float,
    *,
    allow_hold: bool = True,
    allow_prewarm: bool = True,
    pro_rata: bool = True,
) -> GapPlan:
    """The cheapest plan for a gap already `elapsed` seconds long, given the gaps (sorted) that were
    longer than that. Costs are counted from `elapsed` on, per gap, averaged. `pro_rata`: a request that
    arrives while a pre-warmed replica is still starting costs that share of a miss (else a whole one)."""
    n = len(gaps)
    stop_cost = cold_start + miss_cost  # a request that finds nothing: a cold start it waits for
    if n == 0:
        # Longer than every gap seen: hold as long again, but never past what one miss costs, then stop.
        return GapPlan(max(elapsed, min(2 * elapsed, stop_cost)), NEVER, stop_cost, 0)
    remaining = gaps - elapsed
    best = GapPlan(elapsed, NEVER, stop_cost, n)
    if allow_hold:
        # Hold until the j-th gap ends: gaps up to it are served warm (cost: their length), the longer
        # ones pay the hold and then a cold start and a miss.
        prefix = np.cumsum(remaining)
        longer = n - 1 - np.arange(n)
        costs = (prefix + longer * (remaining + stop_cost)) / n
        j = int(np.argmin(costs))
        if costs[j] < best.expected_cost:
            best = GapPlan(float(gaps[j]), NEVER, float(costs[j]), n)
    if allow_prewarm and cold_start > 0:
        # Stop now, start a replica at s (ready at s + cold start): a gap ending before s pays a cold
        # start and a miss; one ending after pays the replica from s, and a partial miss if it ends
        # while the replica is still starting.
        starts = np.maximum(remaining - cold_start, 0.0)
        ends = remaining[None, :]
        s = starts[:, None]
        early = ends < s
        if pro_rata:
            waiting = np.clip((s + cold_start - ends) / cold_start, 0.0, 1.0)
        else:
            waiting = (ends < s + cold_start - _EPS).astype(float)
        per_gap = np.where(early, stop_cost, (ends - s) + miss_cost * waiting)
        costs = per_gap.mean(axis=1)
        j = int(np.argmin(costs))
        if costs[j] < best.expected_cost:
            best = GapPlan(elapsed, elapsed + float(starts[j]), float(costs[j]), n)
    return best


def default_plan(elapsed: float, cold_start: float, miss_cost: float) -> GapPlan:
    """Before enough gaps are known: the ski-rental rule, hold as long as a miss would cost."""
    return GapPlan(elapsed + cold_start + miss_cost, NEVER, cold_start + miss_cost, 0)


def plan_parked(gaps: np.ndarray, elapsed: float, stop_cost: float, parked_cost: float) -> float:
    """How far into a gap (seconds since the level went idle) a parked replica is worth keeping: parked
    time costs `parked_cost` replica-s a second, a request that finds it stopped costs `stop_cost` (a cold
    start and the miss). The hold of `plan_gap` with the holding cost scaled."""
    if parked_cost <= 0:
        return NEVER
    return plan_gap(gaps, elapsed, 0.0, stop_cost / parked_cost, allow_prewarm=False).hold
