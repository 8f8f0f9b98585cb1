"""The `tide` policy's decisions, table-driven: load in, count and reason (naming the mechanism) out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from tide.autoscale import LoadHistory, resolve_config
from tide.autoscale.policies.tide import TidePolicy
from tide.autoscale.policies.tide_gaps import NEVER, plan_gap, plan_parked
from tide.autoscale.policy import Parking, PolicyContext, Proposal
from tide.sim.engine import SimSettings, replay


def make(concurrency: int = 8, **options: float) -> TidePolicy:
    cfg = resolve_config("tide", dict(options), min_replicas=0, max_replicas=100, concurrency=concurrency)
    return TidePolicy(cfg)


def ask(
    p: TidePolicy,
    now: float,
    ready: int,
    starting: int = 0,
    cold_start: float | None = 15.0,
    parking: Parking | None = None,
) -> Proposal:
    cfg = p.config
    ctx = PolicyContext(
        now,
        ready,
        starting,
        ready,
        cfg.target,
        cfg.concurrency,
        cold_start,
        LoadHistory(1),
        cfg,
        True,
        LoadHistory(1),
        parking,
    )
    return p.propose(ctx)


# Nothing parked yet, a wake in a second and the `tide` profile's 2-h retention: a deployment that parks.
PARKING = Parking(parked=0, wake_s=1.0, retention_s=7200.0)


def with_gaps(p: TidePolicy, gap: float, count: int, start: float = 0.0) -> float:
    """`count` busy seconds (one request) each followed by `gap` idle seconds; returns when the last gap began."""
    t = start
    for _ in range(count):
        p.observe(t, 1.0)
        ask(p, t, 1)
        p.observe(t + 1, 0.0)
        t += 1 + gap
    p.observe(t, 1.0)
    ask(p, t, 1)
    p.observe(t + 1, 0.0)
    return t + 1


@dataclass
class Case:
    name: str
    options: dict[str, float] = field(default_factory=dict)
    concurrency: int = 8
    loads: Sequence[tuple[float, float, int]] = field(default_factory=list)  # (second, load, ready at that tick)
    at: tuple[float, int, int] = (0.0, 0, 0)  # (now, ready, starting) of the decision under test
    desired: int = 0
    mechanism: str = ""
    says: str = ""


CASES = [
    Case(
        "a backlog asks for what it needs now",
        loads=[(0, 20.0, 0)],
        at=(0, 0, 0),
        desired=3,
        mechanism="queue",
        says="queue: 20.0 requests in service or waiting at 8/replica -> 3",
    ),
    Case(
        "exact concurrency: one request, one replica",
        {"spare": 0},
        1,
        [(0, 1.0, 1)],
        (0, 1, 0),
        1,
        "queue",
        "at 1/replica -> 1",
    ),
    Case(
        "without exact concurrency a 70% target asks for two",
        {"spare": 0, "exactConcurrency": 0},
        1,
        [(0, 1.0, 1)],
        (0, 1, 0),
        2,
        "queue",
        "at 0.7/replica -> 2",
    ),
    Case(
        "a spare beside the busy replica at concurrency 1",
        {},
        1,
        [(0, 1.0, 1)],
        (0, 1, 0),
        2,
        "queue",
        "+ 1 spare (concurrency 1) -> 2",
    ),
    Case(
        "a drained backlog is not averaged into the window",
        {"coldBacklog": 0},  # this return finds nothing ready: test_tide_cold_backlog.py holds its backlog
        loads=[(s, 40.0, 0) for s in range(0, 10)] + [(s, 2.0, 5) for s in range(10, 21)],
        at=(20, 5, 0),
        desired=1,
        mechanism="queue",
        says="2.0 requests",
    ),
    Case(
        "without in-service sizing the backlog holds for the whole window",
        {"inService": 0},
        loads=[(s, 40.0, 0) for s in range(0, 10)] + [(s, 2.0, 5) for s in range(10, 21)],
        at=(20, 5, 0),
        desired=5,
        mechanism="burst-hold",
        says="burst hold: up to 40.0 requests in service or waiting",
    ),
    Case(
        "a rising load when short looks one cold start ahead",
        {},
        loads=[(0, 8.0, 1), (1, 16.0, 1), (2, 24.0, 1), (3, 32.0, 1)],
        at=(3, 1, 0),
        desired=8,
        mechanism="ramp",
        says="ramp: 32.0 requests in service or waiting and rising; 64.0 expected",
    ),
    Case(
        "burst hold keeps the replicas through a short gap",
        {},
        loads=[(0, 24.0, 3), (1, 24.0, 3), (2, 0.0, 3), (10, 0.0, 3)],
        at=(10, 3, 0),
        desired=3,
        mechanism="burst-hold",
        says="burst hold: up to 24.0 requests in service in the last 60s -> 3",
    ),
    Case(
        "without a learned keep-alive the last replica goes when the burst hold ends",
        {"learnedKeepAlive": 0},
        loads=[(0, 1.0, 1), (1, 0.0, 1), (70, 0.0, 1)],
        at=(70, 1, 0),
        desired=0,
        mechanism="burst-hold",
    ),
    Case(
        "with few gaps seen, the last replica stays as long as a cold wait is worth",
        {"coldRequestCost": 100},
        loads=[(0, 1.0, 1), (1, 0.0, 1), (70, 0.0, 1)],
        at=(70, 1, 0),
        desired=1,
        mechanism="keep-alive",
        says="staying warm until 115s into the gap (too few idle gaps yet (< 5)",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decisions(case: Case) -> None:
    p = make(case.concurrency, **case.options)
    for second, load, ready in case.loads:
        p.observe(float(second), load)
        ask(p, float(second), ready)
    now, ready, starting = case.at
    got = ask(p, float(now), ready, starting)
    assert (got.desired, got.mechanism) == (case.desired, case.mechanism), got.text
    assert got.text is not None
    assert got.text.split(":")[0] in (case.mechanism, case.mechanism.replace("-", " "))  # the reason names it
    assert case.says in got.text


# Gaps of exactly one length are also a period: `periodic=0` keeps these on the gap-length plan they test
# (tests/autoscale/test_tide_period.py has the periodic one).
def test_short_gaps_learned_keep_the_replica_until_their_end() -> None:
    p = make(periodic=0)
    empty = with_gaps(p, 20.0, 10)
    got = ask(p, empty + 10, 1)
    assert (got.desired, got.mechanism) == (1, "keep-alive")
    assert "staying warm until 2" in got.text and "10 past idle gaps" in got.text  # type: ignore[operator]


def test_long_regular_gaps_stop_and_pre_warm_one_cold_start_ahead() -> None:
    p = make(coldRequestCost=120, periodic=0)
    empty = with_gaps(p, 600.0, 10)
    stop = ask(p, empty + 2, 1)
    assert (stop.desired, stop.mechanism) == (0, "stop")
    assert "pre-warm at 58" in stop.text  # type: ignore[operator]
    wake = p.next_decision_at(empty + 2)
    assert wake is not None and empty + 570 < wake < empty + 600 - 14
    warm = ask(p, wake + 1, 0)
    assert (warm.desired, warm.mechanism) == (1, "pre-warm")
    assert warm.text is not None and warm.text.startswith("pre-warm: idle")


def test_without_pre_warm_long_gaps_just_stop() -> None:
    p = make(prewarm=0, periodic=0)
    empty = with_gaps(p, 600.0, 10)
    got = ask(p, empty + 2, 1)
    assert (got.desired, got.mechanism) == (0, "stop") and "pre-warm" not in got.text  # type: ignore[operator]
    assert p.next_decision_at(empty + 2) is None


def test_a_fixed_keep_alive_holds_exactly_that_long_whatever_the_gaps_say() -> None:
    # Regular 600-s gaps: the learned plan stops at once and pre-warms; a fixed keep-alive of 120 s holds
    # the last replica 120 s into every gap, then stops and waits for a request (no pre-warm).
    learned, fixed = make(periodic=0), make(periodic=0, fixedKeepAlive=120)
    for p in (learned, fixed):
        with_gaps(p, 600.0, 10)
    empty = 600.0 * 10 + 11
    assert ask(learned, empty + 2, 1).mechanism == "stop"
    held = ask(fixed, empty + 100, 1)
    assert (held.desired, held.mechanism) == (1, "keep-alive")
    assert held.text is not None and "staying warm until 120s into the gap" in held.text
    assert "a fixed keep-alive of 120s, not learned: fixedKeepAlive" in held.text
    gone = ask(fixed, empty + 122, 1)
    assert (gone.desired, gone.mechanism) == (0, "stop") and "pre-warm" not in (gone.text or "")
    assert fixed.next_decision_at(empty + 122) is None


def test_the_measured_cold_start_moves_the_pre_warm() -> None:
    measured, assumed = make(), make(assumedColdStart=60)
    for p in (measured, assumed):
        with_gaps(p, 600.0, 10)
    t = 600.0 * 10 + 11 + 2
    ask(measured, t, 1, cold_start=15.0)
    ask(assumed, t, 1, cold_start=None)  # nothing measured yet: assumedColdStart
    early, late = assumed.next_decision_at(t), measured.next_decision_at(t)
    assert early is not None and late is not None and late - early == pytest.approx(45.0, abs=1.0)


def test_a_higher_cold_request_cost_holds_longer() -> None:
    gaps = np.sort(np.array([30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0]))
    cheap = plan_gap(gaps, 0.0, 15.0, 10.0, allow_prewarm=False)
    dear = plan_gap(gaps, 0.0, 15.0, 1000.0, allow_prewarm=False)
    assert cheap.hold < dear.hold
    assert cheap.prewarm == dear.prewarm == NEVER


def test_in_the_simulator_a_timer_is_served_warm_for_a_fraction_of_holding_it() -> None:
    cfg = resolve_config("tide", {"initialScale": 0}, min_replicas=0, max_replicas=10, concurrency=8)
    arrivals = [300.0 * i for i in range(60)]
    result = replay("tide", cfg, arrivals, [1.0] * len(arrivals), SimSettings(cold_start=15.0))
    assert result.within_slo >= 0.85  # the first few arrivals are cold, then pre-warmed
    assert result.replica_seconds < 0.25 * arrivals[-1]  # holding a replica all along costs 4x more


def test_with_few_gaps_the_default_keep_alive_runs_out() -> None:
    p = make(coldRequestCost=5)
    p.observe(0.0, 1.0)
    ask(p, 0.0, 1)
    p.observe(1.0, 0.0)
    assert ask(p, 2.0, 1).mechanism == "keep-alive"  # until 1 + 15 + 5 = 21 s
    assert ask(p, 22.0, 1).mechanism == "stop"
    assert ask(p, 60.0, 0).desired == 0


def test_a_decision_a_moment_after_the_last_sample_still_sees_the_load() -> None:
    # Live, samples come about once a second and decisions every 2 s at any fraction of a second.
    p = make(concurrency=1, spare=0)
    p.observe(100.2, 4.0)
    got = ask(p, 102.1, 1)
    assert (got.desired, got.mechanism) == (4, "queue")


def test_a_gap_longer_than_any_seen_is_held_as_long_again_up_to_one_miss() -> None:
    gaps = np.array([])  # none of the gaps seen (5-7 s) lasted this long
    assert plan_gap(gaps, 10.0, 15.0, 100.0).hold == 20.0  # as long again
    assert plan_gap(gaps, 90.0, 15.0, 100.0).hold == 115.0  # but not past one miss's cost
    assert plan_gap(gaps, 200.0, 15.0, 100.0).hold == 200.0  # then stop


def test_a_parked_hold_covers_gaps_a_warm_one_would_not() -> None:
    # Gaps of 60 s and 1,000 s; a miss costs 15 + 300 replica-s. Warm, 1,000 s of holding costs more than
    # the miss it spares; parked at 0.05, 1,000 s cost 50 replica-s, so the parked hold covers them.
    gaps = np.array([60.0] * 5 + [1000.0] * 5)
    assert plan_gap(gaps, 0.0, 15.0, 300.0, allow_prewarm=False).hold == 60.0
    assert plan_parked(gaps, 0.0, 315.0, 0.05) == 1000.0
    # Gaps of 10 hours: parked through one costs 1,800 replica-s, more than the miss: stop at once.
    assert plan_parked(np.array([36000.0] * 5), 0.0, 315.0, 0.05) == 0.0
    assert plan_parked(gaps, 0.0, 315.0, 0.0) == NEVER  # parked time for free: keep it
