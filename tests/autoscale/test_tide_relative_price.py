"""The `tide` policy prices a cold wait relative to what the deployment needs per request (`relativePrice`):
holding a replica through a lull is worth more to a deployment of few long requests (each is a large share
of its requests and of its cost) than to one of thousands of short ones, where the same replica-seconds buy
back a sliver of its requests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.autoscale.test_tide_policy import ask, make
from tide.autoscale import resolve_config
from tide.autoscale.policies.tide import TidePolicy
from tide.autoscale.policies.tide_price import HALF_LIFE_S, MIN_REQUESTS, NeedPerRequest
from tide.sim.engine import SimSettings, replay

LONG_LULLS = [3000.0, 4500.0, 6000.0, 7500.0, 9000.0]


def sessions(p: TidePolicy, lulls: list[float], *, requests: int, every: float, lasts: float) -> float:
    """After each lull in `lulls`, a session of `requests` requests `every` seconds apart, each in service
    for `lasts` seconds (one observation a second, arrivals counted); returns when the last lull began."""
    t = 0.0
    for lull in [*lulls, 0.0]:
        start = t
        busy_until = start + (requests - 1) * every + lasts
        arrivals = {int(start + i * every) for i in range(requests)}
        second = int(start)
        while second < busy_until:
            load = sum(1.0 for a in arrivals if a <= second < a + lasts)
            p.observe(float(second), load, 1.0 if second in arrivals else 0.0)
            if second % 2 == 0:
                ask(p, float(second), max(1, int(load)))
            second += 1
        p.observe(float(second), 0.0)
        t = second + lull
    return float(second)


@dataclass
class PriceCase:
    name: str
    relative: int
    requests: int  # per session
    every: float
    lasts: float
    concurrency: int
    desired: int  # 100 s into a lull
    says: str


PRICE_CASES = [
    # One 20-s image per session at concurrency 1: ~50 replica-s needed per request as measured (its
    # service and a cold start per lull), so a cold wait is worth 25 x 50 = ~1,240 replica-s: held to the
    # 400-s lulls' end.
    PriceCase("few long requests: held", 1, 1, 1.0, 20.0, 1, 1, "25 x the"),
    # The same lulls with the plain 300 replica-s: stopped (holding to 400 s pays above ~800).
    PriceCase("few long requests, plain price: stopped", 0, 1, 1.0, 20.0, 1, 0, "stop: idle"),
    # Sessions of 300 one-second requests at concurrency 8, one every 2 s: ~0.2 replica-s per request, so
    # even the ~8 requests a cold return makes wait are worth ~40 replica-s: stopped at once.
    PriceCase("many short requests: stopped", 1, 300, 2.0, 1.0, 8, 0, "stop: idle"),
]


@pytest.mark.parametrize("case", PRICE_CASES, ids=[c.name for c in PRICE_CASES])
def test_a_cold_wait_is_priced_by_what_a_request_needs(case: PriceCase) -> None:
    p = make(case.concurrency, relativePrice=case.relative, sparsePrice=0, burstGaps=0, periodic=0)
    lulls = [g for i in range(20) for g in (400.0, LONG_LULLS[i % 5])]
    began = sessions(p, lulls, requests=case.requests, every=case.every, lasts=case.lasts)
    got = None
    for s in range(0, 101, 2):
        p.observe(began + s, 0.0)
        got = ask(p, began + s, 1)
    assert got is not None and got.text is not None
    assert got.desired == case.desired, got.text
    assert case.says in got.text, got.text


def test_the_reason_names_the_need_per_request_and_the_waits_of_a_cold_return() -> None:
    p = make(8, sparsePrice=0, burstGaps=0, periodic=0)
    lulls = [g for i in range(10) for g in (400.0, LONG_LULLS[i % 5])]
    began = sessions(p, lulls, requests=40, every=1.0, lasts=1.0)
    p.observe(began, 0.0)
    got = ask(p, began + 2, 1)
    text = got.text or ""
    assert "replica-s this deployment needs per request" in text, text
    assert "requests a cold return makes wait" in text, text


def test_without_arrivals_counted_the_plain_price_applies() -> None:
    """A driver that does not count arrivals (an older gateway) leaves the policy on `coldRequestCost`."""
    p = make(1, sparsePrice=0, burstGaps=0, periodic=0)
    t = 0.0
    for lull in [400.0, 3000.0] * 10:
        for s in range(20):
            p.observe(t + s, 1.0)  # no arrivals
            ask(p, t + s, 1)
        p.observe(t + 20, 0.0)
        t += 20 + lull
    p.observe(t, 1.0)
    p.observe(t + 1, 0.0)
    got = ask(p, t + 3, 1)
    assert "a cold wait is worth 300 replica-s)" in (got.text or ""), got.text  # no need per request


def test_the_need_per_request_is_trusted_after_enough_requests_and_follows_the_traffic() -> None:
    need = NeedPerRequest()
    need.add(0.0, need=50.0, requests=MIN_REQUESTS - 1)
    assert need.per_request() is None  # too few requests to say
    need.add(0.0, need=10.0, requests=1)
    assert need.per_request() == pytest.approx(60.0 / MIN_REQUESTS)
    # Ten half-lives of cheap requests later, the expensive ones hardly count.
    for day in range(1, 11):
        need.add(day * HALF_LIFE_S, need=1.0, requests=100)
    per_request = need.per_request()
    assert per_request is not None and per_request < 0.02


def test_in_the_simulator_the_price_follows_the_trace() -> None:
    """The replay counts each second's arrivals for the policy, as the live controller does from the
    gateways' request counters: a deployment of sparse long requests holds through lulls a plain price
    stops in, and pays for it."""
    arrivals: list[float] = []
    t = 0.0
    for i in range(120):
        arrivals.append(t)
        t += 20 + (300.0 if i % 2 else LONG_LULLS[i % 5])
    durations = [20.0] * len(arrivals)
    settings = SimSettings(cold_start=15.0)
    results = {}
    for relative in (0, 1):
        options = {"relativePrice": relative, "sparsePrice": 0, "periodic": 0}
        cfg = resolve_config("tide", options, min_replicas=0, max_replicas=10, concurrency=1)
        results[relative] = replay("tide", cfg, arrivals, durations, settings)
    assert results[1].within_slo > results[0].within_slo + 0.25
    assert results[1].replica_seconds > results[0].replica_seconds
