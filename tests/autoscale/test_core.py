"""The decision core both drivers run: snapshots in, decisions out (table-driven)."""

from __future__ import annotations

import pytest

from tide.autoscale import resolve_config
from tide.autoscale.core import ReplicaView, ScalePlan, ScalingCore, plan_scale


def ready(key: str, in_flight: int = 0, started: float = 0.0) -> ReplicaView:
    return ReplicaView(key, True, in_flight, started)


def starting(key: str, started: float = 0.0) -> ReplicaView:
    return ReplicaView(key, False, 0, started)


def draining(key: str, in_flight: int) -> ReplicaView:
    return ReplicaView(key, True, in_flight, 0.0, draining=True)


@pytest.mark.parametrize(
    ("desired", "replicas", "plan"),
    [
        pytest.param(3, [ready("a")], ScalePlan(2), id="scale up: start the missing ones"),
        pytest.param(2, [ready("a")], ScalePlan(1), id="one more"),
        pytest.param(1, [ready("a")], ScalePlan(0), id="nothing to do"),
        pytest.param(
            3,
            [ready("a", 1), draining("b", 1), draining("c", 3)],
            ScalePlan(0, ("c", "b")),
            id="warm draining replicas come back before new ones start, busiest first",
        ),
        pytest.param(3, [ready("a"), draining("b", 2)], ScalePlan(1, ("b",)), id="take back one, start the other"),
        pytest.param(
            1,
            [starting("s1", 5.0), ready("a", 2), starting("s2", 9.0)],
            ScalePlan(0, (), ("s2", "s1")),
            id="starting replicas go first, newest first",
        ),
        pytest.param(
            1,
            [ready("a", 2), ready("b", 0), ready("c", 1)],
            ScalePlan(0, (), ("b",), ("c",)),
            id="then idle ones stop, then the least busy drain",
        ),
        pytest.param(
            1,
            [ready("old", 1, started=1.0), ready("new", 1, started=8.0)],
            ScalePlan(0, (), (), ("new",)),
            id="a tie drains the newest",
        ),
        pytest.param(0, [ready("a"), draining("b", 1)], ScalePlan(0, (), ("a",)), id="to zero: draining ones finish"),
    ],
)
def test_plan_scale(desired: int, replicas: list[ReplicaView], plan: ScalePlan) -> None:
    assert plan_scale(desired, replicas) == plan


def knative(**overrides: float) -> ScalingCore:
    cfg = resolve_config("knative", {"initialScale": 0, **overrides}, min_replicas=0, max_replicas=10, concurrency=1)
    return ScalingCore(cfg, first_tick=2.0)


def test_ticks_fall_on_a_fixed_grid_and_a_late_call_keeps_its_phase() -> None:
    core = knative()
    decided = [t for t in (1.0, 2.0, 3.0, 4.5, 5.0, 6.0, 9.9, 10.0) if core.step(t, []).decision is not None]
    assert decided == [2.0, 4.5, 6.0, 9.9, 10.0]  # 4.5 and 9.9 are late; the grid stays on even seconds


def test_wake_at_zero_decides_off_the_grid_and_does_not_move_it() -> None:
    core = knative()
    assert core.step(0.2, []).decision is None  # at zero, before the first tick: nothing
    out = core.step(0.3, [], waiting=True)
    # The request counts as load 1 at once: 1 / (concurrency 1 x 70 %) -> 2 replicas, started now.
    assert out.decision is not None and (out.desired, out.plan) == (2, ScalePlan(2))
    # Already asked for: another waiting request does not decide again; the grid still ticks at 2.
    starting_now = [starting("s1", 0.3), starting("s2", 0.3)]
    assert core.step(0.8, starting_now, waiting=True).decision is None
    assert core.step(2.0, starting_now, waiting=True).decision is not None


@pytest.mark.parametrize(
    ("load", "ready_count", "desired"),
    [
        (0.0, 1, 1),  # idle, but Active for less than a stable window: the last replica stays
        (1.4, 2, 2),  # 1.4 requests at concurrency 1 x 70 %: 2 replicas
        (2.0, 2, 3),  # 2 / 0.7 -> 3
        (7.0, 1, 10),  # 7 / 0.7 = 10: panic (10 >= 2 x 1 ready)
        (30.0, 5, 10),  # capped by max
    ],
)
def test_snapshot_in_decision_out(load: float, ready_count: int, desired: int) -> None:
    cfg = resolve_config("knative", {}, min_replicas=0, max_replicas=10, concurrency=1)
    core = ScalingCore(cfg, first_tick=8.0)
    for t in range(1, 9):
        core.record(float(t), load)
    replicas = [ready(f"r{i}", in_flight=1) for i in range(ready_count)]
    out = core.step(8.0, replicas)
    assert out.decision is not None and out.desired == desired
    assert out.plan == plan_scale(desired, replicas)
