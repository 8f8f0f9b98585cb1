"""Several deployments on one limited inventory: priorities, preemption, draining, and no interference
when there is room for everyone."""

from __future__ import annotations

import numpy as np
import pytest

from tide.sim.contention import replay_scenario
from tide.sim.contention_result import DeploymentOutcome
from tide.sim.engine import SimSettings, replay
from tide.sim.policies import parse_policies
from tide.sim.result import PolicyResult

from .contention_helpers import bursty, scenario, steady, workload

SETTINGS = SimSettings(cold_start=15.0, slo=2.0)


def alone(profile: str, max_replicas: int, arrivals: list[float], durations: list[float]) -> PolicyResult:
    """What `tide sim` reports for the deployment by itself (same config path as the CLI)."""
    (policy,) = parse_policies(profile, min_replicas=0, max_replicas=max_replicas, concurrency=2)
    assert policy.config is not None
    return replay(profile, policy.config, arrivals, durations, SETTINGS)


def assert_same(outcome: DeploymentOutcome, single: PolicyResult) -> None:
    got = outcome.result
    assert got.requests == single.requests
    assert got.cold_starts == single.cold_starts
    assert got.peak_replicas == single.peak_replicas
    assert got.replica_seconds == pytest.approx(single.replica_seconds, rel=1e-9)
    np.testing.assert_allclose(got.waits, single.waits, atol=1e-9)
    assert outcome.preemptions == 0 and outcome.pending_seconds == 0 and outcome.drain_wait_seconds == 0


def test_higher_priority_gets_the_gpus_and_the_lower_one_waits() -> None:
    # Both want 2 replicas (3 requests in flight, target 1.4 each, max 2); only 2 GPUs exist.
    load = workload(steady(2.0, 0.0, 600.0))
    contended = scenario(2, {"name": "high", "priority": 100, "max": 2}, {"name": "low", "priority": 0, "max": 2})
    high, low = replay_scenario(contended, [load, load], SETTINGS).deployments

    assert high.result.peak_replicas == 2
    assert high.pending_seconds == 0 and high.preemptions == 0
    assert high.result.wait_percentile(50) == 0.0
    # High priority is served as if it were alone.
    assert_same(high, alone("knative", 2, load.arrivals, load.durations))
    # Low priority waits for capacity until high's trace is over (10 min), and its requests queue.
    assert low.pending_seconds > 500
    assert low.result.wait_percentile(50) > 60
    assert low.result.requests == len(load.arrivals)  # it serves everything once the GPUs are free


def test_lower_priority_replica_above_min_is_preempted_then_comes_back() -> None:
    # Three GPUs: low wants 2 (min 1), high wants 1 and then 2 during a burst from 300 s to 500 s.
    low_load = workload(steady(2.0, 0.0, 1200.0))
    high_load = workload(steady(0.5, 0.0, 1200.0), steady(2.0, 300.0, 500.0))
    contended = scenario(
        3,
        {"name": "high", "priority": 100, "max": 2},
        {"name": "low", "priority": 0, "min": 1, "max": 2},
    )
    result = replay_scenario(contended, [high_load, low_load], SETTINGS)
    high, low = result.deployments
    replicas = low.result.timeline.replicas_at

    assert replicas(250) == 2  # before the burst both fit
    assert replicas(450) == 1  # during it, low gave its replica above min to high
    assert replicas(1000) == 2  # after it (and high's scale-down), low has it back
    assert low.preemptions >= 1 and low.pending_seconds > 100
    assert min(replicas(t) for t in range(20, 1190, 5)) >= 1  # its min replica is never preempted
    assert high.result.peak_replicas == 2 and high.pending_seconds == 0
    assert result.peak_gpus == 3


def test_with_room_for_everyone_each_deployment_gets_what_it_gets_alone() -> None:
    first, second = bursty(seed=1), bursty(seed=2, offset=37.0)
    roomy = scenario(
        8,
        {"name": "first", "priority": 10, "max": 2, "gpuCount": 2},
        {"name": "second", "priority": 0, "max": 4, "profile": "coreweave"},
        gpus=2,
    )
    one, two = replay_scenario(roomy, [first, second], SETTINGS).deployments
    assert_same(one, alone("knative", 2, first.arrivals, first.durations))
    unshifted = bursty(seed=2)  # what `tide sim` replays for the second trace by itself
    assert_same(two, alone("coreweave", 4, unshifted.arrivals, unshifted.durations))
    assert one.gpu_seconds == pytest.approx(2 * one.result.replica_seconds)


def test_a_preempted_replica_drains_before_its_gpus_go_to_the_preemptor() -> None:
    # One GPU. Low's single request runs 15-115 s; high arrives at 30 s and preempts it.
    low = workload([(0.0, 100.0)])
    high = workload([(30.0, 1.0)])
    one_gpu = scenario(1, {"name": "high", "priority": 10, "max": 1}, {"name": "low", "priority": 0, "max": 1})
    result = replay_scenario(one_gpu, [high, low], SETTINGS)
    got_high, got_low = result.deployments

    assert got_low.preemptions == 1
    assert list(got_low.result.waits) == pytest.approx([15.0])  # its request was not cut short
    # High waited for the drain (until 115 s), then for its own cold start.
    assert list(got_high.result.waits) == pytest.approx([115.0 + 15.0 - 30.0])
    assert got_high.drain_wait_seconds == pytest.approx(115.0 - 30.0)
    assert got_low.result.replica_seconds == pytest.approx(115.0)
    assert got_high.result.replica_seconds == pytest.approx(15.0 + 1.0)
    assert result.utilization <= 1.0 and result.peak_gpus == 1
    assert got_low.pending_seconds == pytest.approx(115.0 - 30.0, abs=1.0)  # it wanted its replica back


def test_utilization_counts_gpu_seconds_over_usable_gpus() -> None:
    load = workload(steady(2.0, 0.0, 300.0))
    result = replay_scenario(scenario(4, {"name": "only", "max": 2}), [load], SETTINGS)
    only = result.deployments[0]
    assert result.usable_gpus == 4 and result.span == pytest.approx(only.result.horizon)
    assert result.utilization == pytest.approx(only.gpu_seconds / (4 * result.span))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_invariants_on_random_bursty_contention(seed: int) -> None:
    # Three priorities, more demand than GPUs, 2-GPU replicas on 4-GPU instances (fragmentation too).
    contended = scenario(
        2,
        {"name": "top", "priority": 50, "min": 1, "max": 3, "gpuCount": 2},
        {"name": "mid", "priority": 20, "max": 4},
        {"name": "bottom", "priority": 20, "max": 4, "profile": "baseten"},
        gpus=4,
    )
    loads = [bursty(seed), bursty(seed + 10, offset=100.0), bursty(seed + 20, offset=50.0)]
    result = replay_scenario(contended, loads, SETTINGS)
    for outcome, load in zip(result.deployments, loads, strict=True):
        assert outcome.result.requests == len(load.arrivals)  # everything is served in the end
        assert (outcome.result.waits >= 0).all()
    assert result.deployments[0].preemptions == 0  # nobody outranks the top priority
    assert result.peak_gpus <= 8 and 0 < result.utilization <= 1.0
    # At every sample the GPUs held, summed over deployments, fit the inventory (what the plot stacks).
    # (Deployments join and leave at different times: their samples are matched by time.)
    held_at: dict[float, int] = {}
    for outcome in result.deployments:
        timeline = outcome.result.timeline
        for t, held in zip(timeline.times, timeline.gpus_held, strict=True):
            held_at[t] = held_at.get(t, 0) + held
    assert 0 < max(held_at.values()) <= 8


def test_a_finished_deployment_ends_its_timeline_holding_nothing_even_between_samples() -> None:
    coarse = SimSettings(cold_start=15.0, slo=2.0, sample_step=97.0)  # finishing rarely falls on a sample
    short, long = workload(steady(1.0, 0.0, 120.0)), workload(steady(1.0, 0.0, 900.0))
    result = replay_scenario(
        scenario(4, {"name": "short", "max": 2}, {"name": "long", "max": 2}), [short, long], coarse
    )
    for outcome in result.deployments:
        timeline = outcome.result.timeline
        assert timeline.gpus_held[-1] == 0 and max(timeline.gpus_held) > 0
        assert timeline.times == sorted(timeline.times)
