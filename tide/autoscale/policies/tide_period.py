"""The `tide` policy's clock: a deployment whose returns come at a regular period (a timer, a cron job, a
nightly batch) is pre-warmed for the phase of the clock it comes back at, not for a gap length.

Pure. The idle-gap model (tide_gaps.py) predicts the next return from the lengths of past gaps. For a
timer that fires every 5 minutes at some point within its minute, a gap's length is the difference of two
such points (300 s +- 60 s, a triangle), but where in the period the next return falls is known much
better: within the same minute of the period as the past returns (a 60-s window). So the returns' times
are read modulo a period found from them: the candidate periods around the median time between returns
are scored by how tightly the returns' phases cluster (the mean resultant length of the phases on the
circle, 1 when every return falls at the same phase, near 0 for returns at random times), and the best is
used only when that clustering is strong. Its prediction of the current gap is one sample per past return:
the next return falls a period after the last one, shifted by that past return's phase against the last
one's. The keep-alive's planner (`plan_gap`) then chooses to hold or to stop and pre-warm from those
samples instead of the gap lengths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

MIN_RETURNS = 10  # returns seen before a period is trusted
MIN_CLUSTER = 0.8  # mean resultant length of the phases (returns spread over a fifth of the period: 0.94)
SEARCH = 0.1  # candidate periods within +-10 % of the median time between returns
STEPS = 200  # candidates each side of the median (at 300 s: a 0.15-s grid)


class Period(NamedTuple):
    """A regular period of the deployment's returns."""

    seconds: float
    cluster: float  # mean resultant length of the returns' phases at that period (0-1)
    returns: int  # returns it was found from


def find_period(returns: Sequence[float]) -> Period | None:
    """The period at which the returns' times (in seconds, increasing) cluster in phase, or None when they
    do not cluster enough (fewer than MIN_RETURNS returns, or a mean resultant length below MIN_CLUSTER)."""
    times = np.asarray(returns, dtype=float)
    if len(times) < MIN_RETURNS:
        return None
    median = float(np.median(np.diff(times)))
    if median <= 0:
        return None
    relative = times - times[-1]  # phases against the last return: exact however large the clock reads
    step = median * SEARCH / STEPS
    period, cluster = _best(relative, median + step * np.arange(-STEPS, STEPS + 1))
    # Then finer around the best (an error of a tenth of a second a period shifts returns 50 periods back
    # by 5 s: the predicted window would be that much too wide or too late).
    period, cluster = _best(relative, period + step * np.linspace(-1.0, 1.0, 41))
    if cluster < MIN_CLUSTER:
        return None
    return Period(period, cluster, len(times))


def _best(relative: np.ndarray, candidates: np.ndarray) -> tuple[float, float]:
    """The candidate period at which the times cluster most in phase, and that clustering."""
    angles = (2.0 * math.pi) * relative[None, :] / candidates[:, None]
    cluster = np.hypot(np.cos(angles).mean(axis=1), np.sin(angles).mean(axis=1))
    best = int(np.argmax(cluster))
    return float(candidates[best]), float(cluster[best])


def predicted_gaps(period: Period, returns: Sequence[float], since: float) -> np.ndarray:
    """Where the current idle gap (empty since `since`) is predicted to end, as seconds into the gap, one
    sample per past return (sorted): a period after the last return, shifted by that return's phase against
    the last one's (wrapped to within half a period)."""
    times = np.asarray(returns, dtype=float)
    last, p = times[-1], period.seconds
    shift = np.mod(times - last + p / 2.0, p) - p / 2.0
    return np.sort(last + p + shift - since)


def describe(period: Period) -> str:
    """The period in words, for a decision's reason."""
    seconds = period.seconds
    every = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f}s"
    return f"returns every {every} at a regular time: a period learned from {period.returns} returns"
