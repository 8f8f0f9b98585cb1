"""The `tide` policy's learned burst hold (`burstGaps`): replicas a burst used are held through the lulls
that the deployment's own history says end soon, and let go through the ones that do not."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.autoscale.test_tide_policy import PARKING, ask, make
from tide.autoscale import resolve_config
from tide.autoscale.policies.tide import TidePolicy
from tide.autoscale.policies.tide_levels import LevelHolds
from tide.sim.engine import SimSettings, replay


def lulls(holds: LevelHolds, high: int, low: int, lull: float, count: int, busy: float = 30.0) -> float:
    """`count` bursts at `high` replicas, each followed by a lull at `low` of `lull` seconds; then one more
    burst and the start of a lull. Returns when that last lull began."""
    t = 0.0
    for _ in range(count):
        holds.update(t, high)
        holds.update(t + busy, low)
        t += busy + lull
    holds.update(t, high)
    holds.update(t + busy, low)
    return t + busy


@dataclass
class LevelCase:
    name: str
    lull: float  # the lulls the history holds
    count: int  # how many of them
    miss_cost: float
    after: float  # seconds into the new lull
    held: int  # the level held then


LEVEL_CASES = [
    LevelCase("short lulls: the burst's level is held through one", 60.0, 10, 600.0, 50.0, 3),
    LevelCase("and let go once past their end", 60.0, 10, 600.0, 70.0, 0),
    LevelCase("a cheap miss is not worth holding a long lull", 600.0, 10, 100.0, 50.0, 0),
    LevelCase("a dear one is", 600.0, 10, 2400.0, 500.0, 3),
    LevelCase("too few lulls seen: nothing learned to hold", 60.0, 3, 600.0, 10.0, 0),
]


@pytest.mark.parametrize("case", LEVEL_CASES, ids=[c.name for c in LEVEL_CASES])
def test_level_holds(case: LevelCase) -> None:
    holds = LevelHolds(min_gaps=5)
    began = lulls(holds, 3, 1, case.lull, case.count)
    assert holds.gaps(3) == case.count and holds.gaps(2) == case.count
    assert holds.held(began + case.after, 15.0, case.miss_cost) == case.held


def test_each_level_keeps_its_own_lulls() -> None:
    # Level 2 comes back after 20 s (a dip inside a burst) and 300 s; level 4 after 330 s (between bursts).
    holds = LevelHolds(min_gaps=5)
    t = 0.0
    for _ in range(10):
        holds.update(t, 4)
        holds.update(t + 10, 1)
        holds.update(t + 30, 2)  # a dip: level 2 back after 20 s
        holds.update(t + 40, 1)
        t += 340.0  # level 4 back 330 s after it went
    holds.update(t, 4)
    holds.update(t + 10, 1)
    assert holds.held(t + 15, 15.0, 2400.0) == 4  # both held early in the lull
    assert holds.held(t + 200, 15.0, 2400.0) == 4  # level 4's lulls last 330 s
    assert holds.held(t + 200, 15.0, 2400.0) == 4  # the same answer asked again (a cached plan)
    assert holds.held(t + 345, 15.0, 2400.0) == 0  # past every lull seen: nothing held


def bursts(p: TidePolicy, lull: float, count: int) -> float:
    """Bursts of 20 requests in service (3 replicas at 8) for 30 s, each followed by `lull` seconds with one
    request in service; returns when the last lull began."""
    t = 0.0
    for _ in range(count + 1):
        for s in range(30):
            p.observe(t + s, 20.0)
            ask(p, t + s, 3)
        t += 30
        for s in range(0, int(lull), 2):
            p.observe(t + s, 1.0)
            ask(p, t + s, 3)
        t += lull
    return t - lull


@pytest.mark.parametrize(
    ("burst_gaps", "desired", "mechanism"),
    [(1, 3, "burst-gaps"), (0, 1, "queue")],
    ids=["learned: held through the lull", "off: the fixed 60-s burst hold lets go"],
)
def test_the_policy_holds_a_burst_through_its_usual_lull(burst_gaps: int, desired: int, mechanism: str) -> None:
    p = make(8, burstGaps=burst_gaps)
    began = bursts(p, 120.0, 8)
    for s in range(0, 90, 2):  # 90 s into the lull: past the 60-s burst hold
        p.observe(began + s, 1.0)
        got = ask(p, began + s, 3)
    assert (got.desired, got.mechanism) == (desired, mechanism), got.text
    assert got.text is not None and got.text.split(":")[0] in (mechanism, mechanism.replace("-", " "))


def test_the_policy_holds_nothing_learned_with_parking() -> None:
    # A parked replica wakes in about a second: holding running ones through a lull is not worth it.
    p = make()
    began = bursts(p, 120.0, 8)
    for s in range(0, 90, 2):
        p.observe(began + s, 1.0)
        got = ask(p, began + s, 3, parking=PARKING)
    assert got.desired == 1 and got.mechanism != "burst-gaps", got.text


def test_in_the_simulator_bursts_after_lulls_wait_less_for_little_more() -> None:
    # Bursts of 40 requests a second for 20 s, every 110 s (90-s lulls, past the fixed 60-s hold).
    arrivals = [110.0 * b + i / 40.0 for b in range(30) for i in range(800)]
    durations = [0.5] * len(arrivals)
    results = {}
    for on in (1, 0):
        cfg = resolve_config("tide", {"burstGaps": on}, min_replicas=0, max_replicas=100, concurrency=8)
        results[on] = replay("tide", cfg, arrivals, durations, SimSettings(cold_start=15.0))
    assert results[1].within_slo >= results[0].within_slo + 0.2, (results[1].within_slo, results[0].within_slo)
    assert results[1].replica_seconds <= 1.6 * results[0].replica_seconds


def sessions(p: TidePolicy, at_once: float, count: int, gap: float = 120.0) -> float:
    """`count` returns of `at_once` requests in service for 20 s at concurrency 1, each followed by `gap` idle
    seconds (observed every second); returns when the last gap began."""
    t = 0.0
    for _ in range(count):
        for s in range(20):
            p.observe(t + s, at_once)
            ask(p, t + s, 2)
        t += 20
        for s in range(int(gap)):
            p.observe(t + s, 0.0)
        t += gap
    for s in range(20):
        p.observe(t + s, at_once)
        ask(p, t + s, 2)
    p.observe(t + 20, 0.0)
    return t + 20


@pytest.mark.parametrize(
    ("idle_spare", "at_once", "desired", "mechanism"),
    [
        (1, 2.0, 2, "idle-spare"),  # returns bring two images at once: a spare is kept while idle
        (1, 1.0, 1, "keep-alive"),  # returns bring one: the held replica serves it
        (0, 2.0, 1, "keep-alive"),  # off: the spare starts only with the return, a cold start late
    ],
    ids=["pairs: held with a spare", "singles: one held", "off: one held"],
)
def test_at_concurrency_1_a_spare_is_held_while_idle_when_returns_come_in_pairs(
    idle_spare: int, at_once: float, desired: int, mechanism: str
) -> None:
    # (the learned burst hold would hold a pair's level too; regular gaps would be pre-warmed instead, and
    # sessions exactly 140 s apart are a period: the gap lengths' plan is the one under test)
    p = make(1, idleSpare=idle_spare, burstGaps=0, prewarm=0, periodic=0)
    began = sessions(p, at_once, 10)
    got = ask(p, began + 70, 2)  # past the 60-s burst hold, within the gaps' usual 120 s
    assert (got.desired, got.mechanism) == (desired, mechanism), got.text
    assert got.text is not None and got.text.split(":")[0] in (mechanism, mechanism.replace("-", " "))
