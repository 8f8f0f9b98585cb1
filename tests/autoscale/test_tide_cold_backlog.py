"""The `tide` policy's cold backlog (`coldBacklog`): after a return that found no replica ready, the
requests queued behind its cold start are counted as load for one scale-down window (as Knative counts
every backlog), not only the ones in service; a return that a held replica served, and the windows after
the first, are sized from the work in service alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from tests.autoscale.test_tide_policy import PARKING, ask, make
from tide.autoscale import resolve_config
from tide.autoscale.policies.tide import TidePolicy
from tide.autoscale.policy import Proposal
from tide.sim.engine import SimSettings, replay

# A return at 5 requests/s of 1-s requests (concurrency 8): 70 pile up behind the 15-s cold start, then
# the 9 replicas asked for drain them in a few seconds and the load settles at 5.
RISE = [5.0 * (s + 1) for s in range(14)]  # seconds 0-13, nothing ready
DRAIN = [60.0, 40.0, 20.0, 8.0]  # seconds 14-17, 9 ready
PEAK = max(RISE + DRAIN)
# In service: the decision at second 14 sees the 9 replicas ready, and from second 15 the load they hold counts.
IN_SERVICE = max(DRAIN[1:])


def ask_parked(p: TidePolicy, now: float, ready: int) -> Proposal:
    return ask(p, now, ready, parking=PARKING)


def cold_return(p: TidePolicy, *, warm: bool, parked: bool, until: float) -> Proposal:
    """The return above from t = 0, deciding every 2 s; `warm`: one replica was held when it came back.
    Returns the decision at `until` (load 5 since second 18)."""
    held = 1 if warm else 0
    decide = ask_parked if parked else (lambda q, t, r: ask(q, t, r))
    decide(p, -2.0, held)  # the last decision before the return: the replicas ready then
    loads = RISE + DRAIN
    last: Proposal | None = None
    for s in range(int(until) + 1):
        p.observe(float(s), loads[s] if s < len(loads) else 5.0)
        if s % 2 == 0:
            last = decide(p, float(s), held if s < len(RISE) else 9)
    assert last is not None
    return last


@dataclass
class BacklogCase:
    name: str
    cold_backlog: int
    warm: bool
    parked: bool
    at: float  # when the decision is read
    desired: int
    mechanism: str


BACKLOG_CASES = [
    BacklogCase(
        "cold return: the backlog behind the start is held for a window",
        1,
        False,
        False,
        40.0,
        math.ceil(PEAK / 8),
        "cold-backlog",
    ),
    BacklogCase(
        "off: sized from the work in service only", 0, False, False, 40.0, math.ceil(IN_SERVICE / 8), "burst-hold"
    ),
    BacklogCase(
        "a held replica served the return: not a cold one",
        1,
        True,
        False,
        40.0,
        math.ceil(IN_SERVICE / 8),
        "burst-hold",
    ),
    BacklogCase("a window after the peak the backlog is no longer counted", 1, False, False, 80.0, 1, "queue"),
    BacklogCase("with parking a wake takes a second: nothing held", 1, False, True, 40.0, 1, "queue"),
]


@pytest.mark.parametrize("case", BACKLOG_CASES, ids=[c.name for c in BACKLOG_CASES])
def test_a_cold_return_holds_its_backlog_for_one_window(case: BacklogCase) -> None:
    p = make(8, coldBacklog=case.cold_backlog, burstGaps=0)
    got = cold_return(p, warm=case.warm, parked=case.parked, until=case.at)
    assert (got.desired, got.mechanism) == (case.desired, case.mechanism), got.text
    if case.mechanism == "cold-backlog":
        assert got.text is not None and got.text.startswith("cold backlog: up to 70.0 requests")
        assert "found no replica ready" in got.text


def test_in_the_simulator_a_return_that_grows_a_minute_later_is_served_warm() -> None:
    # 5 requests/s from zero for a minute, then 48/s (the shape of Azure Functions' single burst).
    rng = np.random.default_rng(3)
    arrivals = sorted([*rng.uniform(0.0, 60.0, 300), *rng.uniform(60.0, 120.0, 2880)])
    got = {}
    for cold_backlog in (1, 0):
        cfg = resolve_config("tide", {"coldBacklog": cold_backlog}, min_replicas=0, max_replicas=100, concurrency=8)
        got[cold_backlog] = replay("tide", cfg, arrivals, [1.0] * len(arrivals), SimSettings(cold_start=15.0))
    # Held from the first backlog, the replicas are there when the rate jumps; without it the jump queues
    # behind a second cold start (and the ramp's forecast overshoots).
    assert got[1].within_slo >= got[0].within_slo + 0.1
    assert got[1].replica_seconds <= got[0].replica_seconds
