"""Parking in `tide sim`: a scale-down parks, a wake costs `wake_time`, parked time is priced and expires."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tide.autoscale import AutoscalerConfig, resolve_config
from tide.errors import FieldError
from tide.sim.cli import sim_command
from tide.sim.engine import SimSettings, replay
from tide.sim.policies import parse_policies
from tide.spec.deployment import DEFAULT_PARKING_RETENTION_S, AutoscalingSpec


def one_replica_knative() -> AutoscalerConfig:
    # Concurrency 2 at the 70% target: one replica for one request, so the counts are easy to follow.
    return resolve_config("knative", {"initialScale": 0}, min_replicas=0, max_replicas=10, concurrency=2)


SETTINGS = SimSettings(cold_start=15.0, wake_time=1.0, parked_cost=0.05, parking_retention=600.0)


def test_a_scale_down_parks_and_the_next_request_waits_only_the_wake() -> None:
    cfg = one_replica_knative()
    arrivals, durations = [0.0, 300.0], [1.0, 1.0]
    stopped = replay("k", cfg, arrivals, durations, SETTINGS, parks=False)
    parked = replay("k", cfg, arrivals, durations, SETTINGS, parks=True)
    assert list(stopped.waits) == [15.0, 15.0] and stopped.cold_starts == 2 and stopped.wakes == 0
    assert parked.waits[0] == 15.0 and parked.waits[1] == pytest.approx(1.0)
    assert parked.cold_starts == 1 and parked.wakes == 1
    # Parked from the scale-down until the wake at 300 s, priced at 0.05 of a running replica.
    running = parked.replica_seconds - 0.05 * parked.parked_seconds
    assert 0 < parked.parked_seconds < 300
    assert running < stopped.replica_seconds  # the wake replaces a 15-s cold start


def test_a_parked_replica_is_stopped_after_its_retention() -> None:
    cfg = one_replica_knative()
    arrivals, durations = [0.0, 5000.0], [1.0, 1.0]
    result = replay("k", cfg, arrivals, durations, SETTINGS, parks=True)
    assert result.parked_seconds == pytest.approx(600.0)  # then stopped: no parked cost after that
    assert result.cold_starts == 2 and result.wakes == 0 and result.waits[1] == 15.0


def test_parked_time_counts_in_the_cost_at_the_parked_fraction() -> None:
    cfg = one_replica_knative()
    arrivals, durations = [0.0, 5000.0], [1.0, 1.0]
    cheap = replay("k", cfg, arrivals, durations, SETTINGS, parks=True)
    dear = replay(
        "k",
        cfg,
        arrivals,
        durations,
        SimSettings(cold_start=15.0, parked_cost=0.5, parking_retention=600.0),
        parks=True,
    )
    assert dear.replica_seconds - cheap.replica_seconds == pytest.approx((0.5 - 0.05) * 600.0)


def test_a_busy_replica_parks_after_its_requests_finish_and_wakes_for_a_return() -> None:
    cfg = one_replica_knative()
    # A burst that needs several replicas, a gap, and a burst again: the second burst wakes, not starts.
    first = [i * 0.1 for i in range(40)]
    second = [400.0 + i * 0.1 for i in range(40)]
    arrivals = first + second
    result = replay("k", cfg, arrivals, [3.0] * len(arrivals), SETTINGS, parks=True)
    plain = replay("k", cfg, arrivals, [3.0] * len(arrivals), SETTINGS, parks=False)
    assert result.requests == plain.requests == len(arrivals)
    assert result.wakes >= 1 and result.cold_starts < plain.cold_starts
    assert max(result.waits[40:]) < max(plain.waits[40:])


def test_profiles_park_by_default_as_live_and_a_spec_can_say_otherwise() -> None:
    def parks(spec: str, mode: str = "profile") -> list[bool]:
        return [p.parks for p in parse_policies(spec, min_replicas=0, max_replicas=5, concurrency=1, parking=mode)]

    live_tide = AutoscalingSpec(profile="tide").parks
    live_knative = AutoscalingSpec(profile="knative").parks
    assert parks("tide,knative") == [live_tide, live_knative] == [True, False]
    assert parks("tide:parking=0,knative:parking=1") == [False, True]
    assert parks("tide,knative", "on") == [True, True]
    assert parks("tide,knative:parking=1", "off") == [False, True]
    with pytest.raises(FieldError, match="parking must be 0 or 1"):
        parks("knative:parking=yes")


def test_the_default_retention_is_the_live_one() -> None:
    assert SimSettings().parking_retention == DEFAULT_PARKING_RETENTION_S


def test_cli_reports_parked_seconds_and_wakes(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input,output\n0,40,40\n300,40,40\n")
    result = CliRunner().invoke(
        sim_command,
        [str(trace), "--policies", "knative,knative:parking=1,oracle", "--concurrency", "1", "--json"],
    )
    assert result.exit_code == 0, result.output
    rows = {p["policy"]: p for p in json.loads(result.output)["policies"]}
    assert rows["knative"]["wakes"] == 0 and rows["knative"]["parked_seconds"] == 0
    assert rows["knative:parking=1"]["wakes"] >= 1 and rows["knative:parking=1"]["parked_seconds"] > 0
    table = CliRunner().invoke(sim_command, [str(trace), "--policies", "knative:parking=1", "--concurrency", "1"])
    assert table.exit_code == 0 and "parked-s" in table.output and "wakes" in table.output


def tide(**options: float) -> AutoscalerConfig:
    return resolve_config("tide", {"initialScale": 0, **options}, min_replicas=0, max_replicas=10, concurrency=1)


def test_tide_parks_after_one_idle_tick_and_wakes_at_once_for_a_request_that_finds_no_room() -> None:
    # Two images at once, a 100-s gap, then two again half a second apart (concurrency 1).
    arrivals, durations = [0.0, 0.0, 100.0, 100.5], [5.0] * 4
    early = replay("tide", tide(), arrivals, durations, SETTINGS, parks=True)
    held = replay("tide", tide(parkEarly=0), arrivals, durations, SETTINGS, parks=True)
    # The return wakes parked replicas: the one at zero and the one that finds the first still waking.
    assert early.waits[2] == pytest.approx(1.0) and early.waits[3] == pytest.approx(0.5)
    assert early.wakes >= 2 and early.cold_starts == 3  # two images + the spare, all before the gap
    # Parked through the gap instead of held warm (learned keep-alive, burst hold) and the second request
    # waits for a tick before its wake without the wake for the queue.
    assert early.replica_seconds < held.replica_seconds
    assert held.waits[3] > early.waits[3]


def test_tide_plans_the_gap_when_the_parked_replica_would_be_stopped() -> None:
    # Parked after the first request; its 600-s retention would stop it before the request at 700 s.
    arrivals, durations = [0.0, 700.0], [1.0, 1.0]
    planned = replay("tide", tide(), arrivals, durations, SETTINGS, parks=True)
    parked_only = replay("tide", tide(learnedKeepAlive=0), arrivals, durations, SETTINGS, parks=True)
    # The learned plan (here the ski-rental default: hold a cold start plus a miss) wakes it before the
    # retention runs out and holds it warm: the request at 700 s waits for nothing.
    assert planned.waits[1] == 0.0 and planned.wakes == 1
    assert parked_only.waits[1] == 15.0 and parked_only.cold_starts > planned.cold_starts


def test_tide_with_parking_keeps_a_start_in_progress_and_parks_ready_replicas() -> None:
    from tide.autoscale import Autoscaler
    from tide.autoscale.policy import Parking

    parking = Parking(parked=1, wake_s=1.0, retention_s=600.0)  # one parked: no spare needed
    scaler = Autoscaler(tide())
    for second in range(1, 11):
        scaler.record(float(second), 3.0)  # three images in service
    scaler.record(11.0, 1.0)  # then one: two of the three ready replicas are not needed
    kept = scaler.decide(11.0, 3, starting=2, parking=parking)
    # The two starts in progress are kept (they park once ready); without them, one replica would do.
    assert kept.desired == 5 and "start(s) in progress" in (kept.note or "")
    fresh = Autoscaler(tide())
    for second in range(1, 11):
        fresh.record(float(second), 3.0)
    fresh.record(11.0, 1.0)
    assert fresh.decide(11.0, 3, starting=0, parking=parking).desired == 1
