"""The `tide` policy prices a cold wait by how sparse the deployment is (`sparsePrice`): on a deployment
that comes back once an hour each request is a larger share of its requests, so the keep-alive holds
through lulls that it would not hold for a busy one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.autoscale.test_tide_policy import ask, make
from tide.autoscale.policies.tide import TidePolicy


def returns(p: TidePolicy, gaps: list[float]) -> float:
    """One request (1 s) after each gap in `gaps`, then one more; returns when the last gap began."""
    t = 0.0
    for gap in gaps:
        p.observe(t, 1.0)
        ask(p, t, 1)
        p.observe(t + 1, 0.0)
        t += 1 + gap
    p.observe(t, 1.0)
    ask(p, t, 1)
    p.observe(t + 1, 0.0)
    return t + 1


@dataclass
class SparseCase:
    name: str
    sparse_price: int
    short: float  # the short lulls; every other one lasts 3,000-9,000 s
    desired: int  # 100 s into a lull
    mechanism: str
    says: str


SPARSE_CASES = [
    # Half the lulls end at 400 s, the others anywhere in 3,000-9,000 s (no pre-warm catches them): holding
    # to 400 s is worth it once a miss is worth more than ~800 replica-s. A return every ~53 min: 300 x 4.
    SparseCase(
        "sparse: a miss priced 4x, held to the short lulls' end",
        1,
        400.0,
        1,
        "keep-alive",
        "worth 1200 replica-s: 300 x 4.0, sparse",
    ),
    SparseCase("off: priced 300, stopped", 0, 400.0, 0, "stop", "stop: idle"),
    # Lulls of 20 s and 3,000-9,000 s (a return every ~50 min): the short ones end before 100 s either way.
    SparseCase("sparse, but past the short lulls: stopped", 1, 20.0, 0, "stop", "stop: idle"),
]


@pytest.mark.parametrize("case", SPARSE_CASES, ids=[c.name for c in SPARSE_CASES])
def test_a_cold_wait_weighs_more_on_a_sparse_deployment(case: SparseCase) -> None:
    p = make(8, sparsePrice=case.sparse_price, burstGaps=0)
    long = [3000.0, 4500.0, 6000.0, 7500.0, 9000.0]
    began = returns(p, [g for i in range(10) for g in (case.short, long[i % 5])])
    got = None
    for s in range(0, 101, 2):
        p.observe(began + s, 0.0)
        got = ask(p, began + s, 1)
    assert got is not None
    assert (got.desired, got.mechanism) == (case.desired, case.mechanism), got.text
    assert got.text is not None and case.says in got.text, got.text


def test_a_busy_deployment_keeps_the_plain_price() -> None:
    p = make(8)
    began = returns(p, [3.0, 5.0, 8.0, 30.0, 60.0, 90.0] * 10)  # a return every ~33 s: below `sparseRef`
    p.observe(began, 0.0)
    got = ask(p, began + 2, 1)
    assert got.mechanism == "keep-alive" and "a cold wait is worth 300 replica-s" in (got.text or ""), got.text
