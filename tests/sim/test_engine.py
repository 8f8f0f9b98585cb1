"""The replay and the oracle: costs, waits and cold starts a user would check by hand."""

from __future__ import annotations

import random

import pytest

from tide.autoscale import AutoscalerConfig, resolve_config
from tide.errors import FieldError
from tide.sim.engine import SimSettings, replay
from tide.sim.oracle import oracle
from tide.sim.policies import parse_duration, parse_policies
from tide.sim.runner import run_policies
from tide.sim.service import ServiceModel
from tide.sim.trace import sorted_trace


def knative(**overrides: float) -> AutoscalerConfig:
    return resolve_config("knative", {"initialScale": 0, **overrides}, min_replicas=0, max_replicas=100, concurrency=4)


def bursty_then_idle(seed: int = 1) -> tuple[list[float], list[float]]:
    """Two minutes at ~20 req/s, an hour of nothing, then one last request."""
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, 120) for _ in range(2400))
    arrivals.append(3720.0)
    return arrivals, [1.0] * len(arrivals)


def test_oracle_single_request_costs_cold_start_plus_service() -> None:
    result = oracle([0.0], [10.0], limit=1, cold_start=15.0, slo=2.0)
    assert result.replica_seconds == pytest.approx(25.0)
    assert result.cold_starts == 1 and result.peak_replicas == 1


def test_oracle_keeps_a_replica_warm_across_a_short_gap_only() -> None:
    short = oracle([0.0, 15.0], [10.0, 10.0], limit=1, cold_start=15.0, slo=2.0)
    assert short.replica_seconds == pytest.approx(15 + 10 + 5 + 10) and short.cold_starts == 1
    long = oracle([0.0, 100.0], [10.0, 10.0], limit=1, cold_start=15.0, slo=2.0)
    assert long.replica_seconds == pytest.approx(2 * (15 + 10)) and long.cold_starts == 2


def test_oracle_stacks_replicas_by_concurrency() -> None:
    result = oracle([0.0, 0.0, 0.0], [10.0, 10.0, 10.0], limit=2, cold_start=5.0, slo=2.0)
    assert result.peak_replicas == 2
    assert result.replica_seconds == pytest.approx(2 * (5 + 10))


def test_first_request_waits_one_cold_start_and_the_queue_is_fifo() -> None:
    cfg = resolve_config("knative", {"initialScale": 0}, min_replicas=0, max_replicas=1, concurrency=1)
    result = replay("k", cfg, [0.0, 0.1], [10.0, 10.0], SimSettings(cold_start=15.0))
    assert list(result.waits) == pytest.approx([15.0, 24.9])
    assert result.cold_starts == 1 and result.requests == 2
    assert result.replica_seconds >= 35.0  # cold start + both requests


def test_every_request_completes_even_when_scaling_down_busy_replicas() -> None:
    arrivals, durations = bursty_then_idle()
    durations = [30.0] * len(arrivals)  # long requests outlive the scale-down decisions
    result = replay("k", knative(), arrivals, durations, SimSettings())
    assert result.requests == len(arrivals)


def test_replicas_scale_back_to_zero_when_idle() -> None:
    arrivals, durations = bursty_then_idle()
    result = replay("k", knative(), arrivals, durations, SimSettings())
    assert result.timeline.replicas_at(60.0) >= 4
    assert [result.timeline.replicas_at(t) for t in range(400, 3700, 50)] == [0] * 66


def test_oracle_is_never_costlier_than_a_policy_at_full_slo() -> None:
    arrivals, durations = bursty_then_idle()
    trace = sorted_trace("synthetic", arrivals, durations=durations)
    policies = parse_policies(
        "knative,coreweave,baseten,knative:window=6s,oracle", min_replicas=0, max_replicas=100, concurrency=4
    )
    results, best = run_policies(trace, policies, ServiceModel(), SimSettings(slo=30.0), concurrency=4)
    full_slo = [r for r in results if r.policy != "oracle" and r.within_slo == 1.0]
    assert full_slo  # with a 30 s SLO every policy serves everything in time
    for result in full_slo:
        assert result.replica_seconds >= best.replica_seconds, result.policy


def test_longer_window_costs_more_on_a_bursty_then_idle_trace() -> None:
    arrivals, durations = bursty_then_idle()
    short = replay("60s", knative(window=60), arrivals, durations, SimSettings())
    long = replay("600s", knative(window=600), arrivals, durations, SimSettings())
    assert long.replica_seconds > short.replica_seconds * 1.5


def test_retention_keeps_the_last_replica_longer() -> None:
    arrivals, durations = bursty_then_idle()
    without = replay("0", knative(), arrivals, durations, SimSettings())
    held = replay("900", knative(scaleToZeroRetention=900), arrivals, durations, SimSettings())
    assert held.replica_seconds == pytest.approx(without.replica_seconds + 900 - 30, rel=0.02)
    assert held.cold_starts <= without.cold_starts


def test_tokens_make_service_time() -> None:
    trace = sorted_trace("t", [0.0, 1.0], input_tokens=[4000, 0], output_tokens=[40, 80])
    assert ServiceModel(4000, 40).durations(trace) == pytest.approx([2.0, 2.0])
    own = sorted_trace("d", [0.0], durations=[7.0])
    assert ServiceModel().durations(own) == [7.0]
    assert ServiceModel(default_duration=3.0).durations(sorted_trace("n", [0.0])) == [3.0]


def test_policy_parsing() -> None:
    policies = parse_policies(
        "knative:window=2m:scaleDownDelay=30s,oracle", min_replicas=0, max_replicas=5, concurrency=2
    )
    assert policies[0].config is not None and policies[0].config.stable_window == 120
    assert policies[0].config.scale_down_delay == 30 and policies[1].is_oracle
    assert parse_duration("500ms") == 0.5 and parse_duration("1h") == 3600
    with pytest.raises(FieldError, match="unknown policy"):
        parse_policies("kubernetes", min_replicas=0, max_replicas=5, concurrency=2)
    with pytest.raises(FieldError, match=r"autoscaling\.window"):
        parse_policies("knative:window=1s", min_replicas=0, max_replicas=5, concurrency=2)
    with pytest.raises(FieldError, match="key=value"):
        parse_policies("knative:speed=3", min_replicas=0, max_replicas=5, concurrency=2)


def test_a_warm_engine_pool_makes_a_start_load_only_the_weights_until_it_runs_dry() -> None:
    """`tide up` keeps a pooled engine (runtime imported) per --warm-pool: a start that takes it is ready
    after loading the weights; the replacement it spawns is ready for the next start only a cold start
    after its own spawn. Two requests at once on replicas of concurrency 1, and one after an idle hour."""
    cfg = resolve_config("knative", {"initialScale": 0}, min_replicas=0, max_replicas=2, concurrency=1)
    arrivals, durations = [0.0, 0.0, 3600.0], [30.0, 30.0, 1.0]

    def waits(pool: int) -> list[float]:
        settings = SimSettings(cold_start=15.0, warm_pool=pool, warm_start=2.0)
        return [float(w) for w in replay("k", cfg, arrivals, durations, settings).waits]

    assert waits(0) == [15.0, 15.0, 15.0]  # no pool: every start is cold
    assert waits(1) == [2.0, 15.0, 2.0]  # the second start takes the engine spawned at 0; refilled by 3600
    assert waits(2) == [2.0, 2.0, 2.0]
