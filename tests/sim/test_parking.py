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
from tide.sim.result import PolicyResult
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
    # The return wakes parked replicas: one at zero (no spare: one is parked), and one at once for the
    # request that finds it still waking.
    assert early.waits[2] == pytest.approx(1.0) and early.waits[3] == pytest.approx(1.0)
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


TIDE_SETTINGS = SimSettings(cold_start=15.0, wake_time=1.0, parked_cost=0.05, parking_retention=7200.0)


def running_seconds(result: PolicyResult, parked_cost: float = 0.05) -> float:
    return result.replica_seconds - parked_cost * result.parked_seconds


def test_tide_parks_its_last_replica_at_the_first_idle_tick() -> None:
    # Ready at 15 s, done at 16 s: the policy times the going itself (no Knative stable window after it).
    result = replay("tide", tide(spare=0), [0.0], [1.0], TIDE_SETTINGS, parks=True)
    assert running_seconds(result) <= 16.0 + 2.0  # at most one 2-s tick past the request


def test_tide_keeps_the_last_parked_replica_through_a_long_gap_and_stops_the_bursts_others() -> None:
    # Two images at once (two replicas and the spare), then one image 1,500 s later: past a burst's
    # 600-s parked hold, within the last replica's (too few gaps yet: the ski-rental hold).
    arrivals, durations = [0.0, 0.0, 1500.0], [5.0, 5.0, 5.0]
    planned = replay("tide", tide(), arrivals, durations, TIDE_SETTINGS, parks=True)
    all_kept = replay("tide", tide(parkedPlan=0), arrivals, durations, TIDE_SETTINGS, parks=True)
    assert planned.waits[2] == pytest.approx(1.0) and planned.wakes == 1  # woken, not a cold start
    assert all_kept.waits[2] == pytest.approx(1.0)
    # Three parked at ~20 s: two stopped at ~620 s, one kept to 1,500 s; without the plan all three stay.
    assert planned.parked_seconds == pytest.approx(2 * 600 + 1480, abs=30)
    assert all_kept.parked_seconds == pytest.approx(3 * 1480, abs=45)


def test_tide_learns_that_parking_through_the_deployments_gaps_does_not_pay() -> None:
    # A 1-s request every 6,000 s; a parked second costs 0.1, so parking through a gap (600 replica-s)
    # costs more than the cold start and the miss it spares (15 + 300). The first five gaps hold the
    # ski-rental default (parked until 3,150 s: as much as one miss); once five gaps are known, the
    # replica is stopped at once (no pre-warm here: it would start one ahead of these clockwork requests;
    # no ramp look-ahead, which asks for a second replica on a rise from zero).
    settings = SimSettings(cold_start=15.0, wake_time=1.0, parked_cost=0.1, parking_retention=7200.0)
    arrivals = [6000.0 * k for k in range(10)]
    result = replay("tide", tide(prewarm=0, spare=0, ramp=0), arrivals, [1.0] * 10, settings, parks=True)
    assert result.cold_starts == 10 and result.wakes == 0
    assert 5 * 3150 - 100 <= result.parked_seconds <= 5 * 3150 + 4 * 20


def test_the_tide_profile_keeps_parked_replicas_up_to_2h_by_default() -> None:
    from tide.spec.deployment import default_parking_retention

    assert default_parking_retention("tide") == 7200.0 and default_parking_retention("knative") == 600.0
    assert AutoscalingSpec(profile="tide").parking_retention_s == 7200.0
    [tide_policy, knative] = parse_policies("tide,knative:parking=1", min_replicas=0, max_replicas=4, concurrency=1)
    assert (tide_policy.retention, knative.retention) == (7200.0, 600.0)
    [forced] = parse_policies("tide", min_replicas=0, max_replicas=4, concurrency=1, retention=60.0)
    assert forced.retention == 60.0
