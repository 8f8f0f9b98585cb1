"""The `tide` policy's idle-gap history skips dips (`skipDips`): a second with nothing in flight between
the requests of a busy stretch is not an idle gap, so hundreds of such dips do not push the lulls that
decide the keep-alive out of the history."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.autoscale.test_tide_policy import ask, make
from tide.autoscale.policies.tide import TidePolicy

LULL = 40.0  # the deployment's usual lull between busy stretches, seconds


def busy(p: TidePolicy, t: float, dips: int) -> float:
    """A busy stretch of one request at a time with a one-second dip after each (`dips` of them), deciding
    every 2 s; returns when its last second ended."""
    for _ in range(dips):
        p.observe(t, 1.0)
        ask(p, t, 1)
        p.observe(t + 1, 0.0)
        t += 2
    p.observe(t, 1.0)
    ask(p, t, 1)
    return t + 1


def idle(p: TidePolicy, t: float, seconds: float) -> float:
    """Nothing in flight for `seconds`, observed every second, deciding every 2 s; returns its end."""
    for s in range(int(seconds)):
        p.observe(t + s, 0.0)
        if s % 2 == 0:
            ask(p, t + s, 1)
    return t + seconds


@dataclass
class DipCase:
    name: str
    skip_dips: int
    desired: int  # 20 s into a lull: replicas asked for
    mechanism: str


DIP_CASES = [
    DipCase("skipped: the 40-s lulls decide, the replica stays warm", 1, 1, "keep-alive"),
    DipCase("recorded: the dips and one night decide, the replica stops", 0, 0, "stop"),
]


@pytest.mark.parametrize("case", DIP_CASES, ids=[c.name for c in DIP_CASES])
def test_one_second_dips_do_not_push_the_lulls_out_of_the_history(case: DipCase) -> None:
    p = make(8, skipDips=case.skip_dips, burstGaps=0)
    t = 0.0
    for _ in range(10):  # busy stretches, each followed by the usual 40-s lull
        t = idle(p, busy(p, t, 30), LULL)
    t = idle(p, busy(p, t, 30), 3000.0)  # a night
    t = busy(p, t, 190)  # a long busy stretch: 190 one-second dips (recorded, they fill the last 200 gaps)
    began = t
    got = None
    for s in range(0, 21, 2):  # 20 s into a lull
        p.observe(began + s, 0.0)
        got = ask(p, began + s, 1)
    assert got is not None
    assert (got.desired, got.mechanism) == (case.desired, case.mechanism), got.text
    assert got.text is not None and got.text.startswith(case.mechanism)
    assert ("dips under 2s skipped" in got.text) == bool(case.skip_dips), got.text
