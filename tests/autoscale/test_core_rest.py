"""Rest at zero (ScalingCore.rest/resume): skipping an idle deployment's ticks changes no decision.

Two drivers run the same load trace side by side, one calling `record` and `tick` every second, the
other skipping both while its core rests at zero (as the controller does for thousands of idle
deployments). Every second their desired counts must agree, and every decision the resting driver makes
must equal, field for field, the one the every-second driver made at that second.
"""

from __future__ import annotations

import random

import pytest

from tide.autoscale import AutoscalerConfig, ScaleDecision, resolve_config
from tide.autoscale.core import ScalingCore

COLD_START_S = 3  # a replica is ready this long after it was asked for
PHASE = 0.37  # the driver's calls are not on whole seconds


def trace(seed: int, seconds: int) -> list[float]:
    """Idle stretches (some past a 30-min scale-to-zero retention) between bursts and trickles of load."""
    rng = random.Random(seed)
    loads: list[float] = []
    while len(loads) < seconds:
        loads += [0.0] * rng.choice([0, 1, 5, 30, 61, 62, 90, 150, 400, 1000, 2500])
        kind = rng.random()
        if kind < 0.3:
            loads += [rng.choice([0.2, 1.0])]  # one short request
        elif kind < 0.7:
            loads += [rng.uniform(0.5, 30.0) for _ in range(rng.randint(2, 60))]
        else:
            loads += [rng.choice([0.0, 0.0, 1.0, 3.0]) for _ in range(rng.randint(5, 40))]
    return loads[:seconds]


def drive(
    config: AutoscalerConfig, loads: list[float], *, rest: bool
) -> tuple[list[int], dict[int, ScaleDecision], int]:
    """Desired count at each second, the decisions made (by second) and the seconds spent resting."""
    core = ScalingCore(config, first_tick=PHASE + 2.0)
    started: list[float] = []  # when each replica was asked for
    desired_by_second: list[int] = []
    decisions: dict[int, ScaleDecision] = {}
    rested = 0
    for second, load in enumerate(loads):
        now = second + PHASE
        if rest and core.resting and load == 0 and not started:
            rested += 1
            desired_by_second.append(core.desired)
            continue
        ready = sum(1 for s in started if now - s >= COLD_START_S)
        if load > 0 and ready == 0:  # a request at zero wakes the core (the gateway's on_demand)
            woke = core.wake(now, ready)
            if woke is not None:
                decisions[second] = woke
        if load > 0 or started:  # no replica and no request: no data (ScalingCore.record)
            core.record(now, load)
        decision = core.tick(now, ready, starting=len(started) - ready)
        if decision is not None:
            decisions[second] = decision
        want = core.desired
        started = started[:want] + [now] * max(0, want - len(started))  # the newest go first
        if rest and load == 0 and not started:
            core.rest(now)
        desired_by_second.append(want)
    return desired_by_second, decisions, rested


@pytest.mark.parametrize("profile", ["knative", "development", "baseten", "coreweave"])
@pytest.mark.parametrize("seed", range(3))
def test_a_resting_core_decides_as_one_driven_every_second(profile: str, seed: int) -> None:
    config = resolve_config(profile, {}, min_replicas=0, max_replicas=20, concurrency=4)
    loads = trace(seed, 8000)
    every_desired, every_decisions, _ = drive(config, loads, rest=False)
    rest_desired, rest_decisions, rested = drive(config, loads, rest=True)

    assert rest_desired == every_desired
    assert max(every_desired) > 0  # the trace scaled up, so rests were left
    for second, decision in rest_decisions.items():
        assert decision == every_decisions.get(second), f"second {second}"
    assert rested > 0  # the fast path was taken (a 900-s scale-down delay keeps some profiles up long)


def test_a_spec_change_at_rest_replays_the_old_config_first() -> None:
    old = resolve_config("knative", {"initialScale": 0}, min_replicas=0, max_replicas=20, concurrency=4)
    new = resolve_config("knative", {"initialScale": 0, "window": 30.0}, min_replicas=0, max_replicas=20, concurrency=4)
    cores = [ScalingCore(old, first_tick=2.0) for _ in range(2)]
    for t in range(0, 200):  # at zero with no replica: no data recorded (ScalingCore.record), ticks
        for core in cores:
            core.tick(float(t), 0)
    assert cores[1].rest(199.0)
    for t in range(200, 400):  # the every-second core keeps going; the other skips
        cores[0].tick(float(t), 0)
    for core in cores:
        core.update_config(new, now=400.0)
    decisions = []
    for core in cores:
        core.record(400.0, 5.0)
        decisions.append(core.tick(400.0, 0))
    assert decisions[0] is not None and decisions[0] == decisions[1]
    assert decisions[0].desired > 0


def test_a_core_with_load_in_its_window_does_not_rest() -> None:
    config = resolve_config("knative", {"initialScale": 0}, min_replicas=0, max_replicas=20, concurrency=4)
    core = ScalingCore(config, first_tick=2.0)
    for t in range(0, 100):
        core.record(float(t), 0.0)
        core.tick(float(t), 0)
    assert core.can_rest()
    core.record(100.0, 0.5)  # a request between two ticks
    assert not core.rest(100.0)
