"""The `tide` policy's periodic pre-warm (`periodic`): a deployment that comes back at a regular phase of the
clock (a timer firing at some point within its minute every 5 minutes, a nightly job) is pre-warmed for the
phase its returns fall at, not for the spread of its gap lengths (twice as wide: the difference of two
points within the window)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.autoscale.test_tide_policy import ask, make
from tide.autoscale import resolve_config
from tide.autoscale.policies.tide import TidePolicy
from tide.autoscale.policies.tide_period import find_period, predicted_gaps
from tide.sim.engine import SimSettings, replay


def timer(period: float, window: float, count: int, seed: int = 0) -> list[float]:
    """A timer: `count` firings `period` apart, each at a random point of the first `window` seconds."""
    rng = np.random.default_rng(seed)
    return [float(period * i + rng.uniform(0.0, window)) for i in range(count)]


@dataclass
class FindCase:
    name: str
    returns: list[float]
    period: float | None  # expected (None: no period found)


FIND_CASES = [
    FindCase("a 5-min timer firing within its minute", timer(300.0, 60.0, 50), 300.0),
    FindCase("a nightly job within its hour", timer(86400.0, 3600.0, 12, seed=1), 86400.0),
    FindCase("a 1-min timer to the second", [60.0 * i for i in range(30)], 60.0),
    FindCase(
        "returns at random times (Poisson, one per 5 min)",
        list(np.cumsum(np.random.default_rng(2).exponential(300.0, 50))),
        None,
    ),
    FindCase("too few returns to trust a period", [300.0 * i for i in range(9)], None),
]


@pytest.mark.parametrize("case", FIND_CASES, ids=[c.name for c in FIND_CASES])
def test_a_period_is_found_only_where_returns_cluster_in_phase(case: FindCase) -> None:
    found = find_period(case.returns)
    if case.period is None:
        assert found is None, found
    else:
        assert found is not None
        assert found.seconds == pytest.approx(case.period, rel=0.002)
        assert found.cluster >= 0.8


def test_the_next_return_is_predicted_within_the_timer_window_a_period_on() -> None:
    returns = timer(300.0, 60.0, 50)
    period = find_period(returns)
    assert period is not None
    last = returns[-1]
    gaps = predicted_gaps(period, returns, since=last + 1.0)
    # The next firing falls at 300 x 50 + [0, 60): seconds into the gap that began just after the last one.
    start = 300.0 * 50 - (last + 1.0)
    assert gaps.min() >= start - 2.0 and gaps.max() <= start + 62.0
    assert gaps.max() - gaps.min() > 40.0  # the window, not one point


def replay_returns(p: TidePolicy, times: list[float]) -> float:
    """One 1-s request at each of `times` (whole seconds, as the load is sampled); returns when the
    last gap began."""
    for t in times:
        p.observe(t, 1.0)
        ask(p, t, 1)
        p.observe(t + 1, 0.0)
    return times[-1] + 1


@dataclass
class PlanCase:
    name: str
    options: dict[str, float]
    returns: list[float]
    mechanism: str  # of the decision 2 s into the gap
    says: str


_TIMER = [float(np.floor(t)) for t in timer(300.0, 60.0, 40, seed=3)]
_RANDOM = [float(np.floor(t)) for t in np.cumsum(np.random.default_rng(4).exponential(300.0, 40))]

PLAN_CASES = [
    PlanCase("a timer: stop, pre-warm for its phase", {}, _TIMER, "periodic", "returns every 300s at a regular time"),
    PlanCase("off: the gap lengths decide", {"periodic": 0}, _TIMER, "stop", "past idle gaps"),
    PlanCase("random returns: the gap lengths decide", {}, _RANDOM, "", "past idle gaps"),
]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[c.name for c in PLAN_CASES])
def test_the_reason_names_the_period_only_where_there_is_one(case: PlanCase) -> None:
    p = make(8, burstGaps=0, **case.options)
    began = replay_returns(p, case.returns)
    p.observe(began + 2, 0.0)
    got = ask(p, began + 2, 1)
    if case.mechanism:
        assert got.mechanism == case.mechanism, got.text
    else:
        assert got.mechanism in ("keep-alive", "stop"), got.text
    assert got.text is not None and case.says in got.text, got.text
    assert got.text.split(":")[0] == got.mechanism.replace("-", " ") or got.text.startswith(got.mechanism)


def test_the_pre_warm_comes_one_cold_start_before_the_timer_window() -> None:
    p = make(8, burstGaps=0)
    began = replay_returns(p, _TIMER)
    p.observe(began + 2, 0.0)
    assert ask(p, began + 2, 1).desired == 0
    wake = p.next_decision_at(began + 2)
    window = 300.0 * len(_TIMER)  # the next firing falls in [window, window + 60)
    # Ready (a cold start later) by the first seconds of the window, not a window's width before it.
    assert wake is not None and window - 30.0 <= wake + 15.0 <= window + 10.0
    warm = ask(p, wake, 0)
    assert (warm.desired, warm.mechanism) == (1, "periodic")
    assert warm.text is not None and warm.text.startswith("periodic: idle") and "pre-warming" in warm.text


def test_in_the_simulator_the_period_serves_a_timer_cheaper_and_warmer() -> None:
    arrivals = timer(300.0, 60.0, 150, seed=5)
    got = {}
    for periodic in (1, 0):
        cfg = resolve_config(
            "tide", {"initialScale": 0, "periodic": periodic}, min_replicas=0, max_replicas=10, concurrency=8
        )
        got[periodic] = replay("tide", cfg, arrivals, [1.0] * len(arrivals), SimSettings(cold_start=15.0))
    # A gap's length spreads over twice the window (240-360 s), the phase over the window itself: the
    # replica is held about half as long, for about the same share of warm requests.
    assert got[1].replica_seconds < 0.9 * got[0].replica_seconds
    assert got[1].within_slo >= got[0].within_slo - 0.02
