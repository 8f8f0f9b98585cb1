"""Where `tide sim` must behave as the systems its profiles model (issue 18, section 3)."""

from __future__ import annotations

import pytest

from tide.autoscale import Autoscaler, resolve_config
from tide.sim.engine import SimSettings, replay


def cfg(profile: str, concurrency: int = 8, **overrides: float):  # type: ignore[no-untyped-def]
    return resolve_config(
        profile, {"initialScale": 0, **overrides}, min_replicas=0, max_replicas=100, concurrency=concurrency
    )


def zero_at(profile: str, concurrency: int = 8) -> float:
    """When the last replica stops after one 10 s request at t=100 (no cold start; a second request at
    t=3000 keeps the replay going through the idle spell)."""
    result = replay(profile, cfg(profile, concurrency), [100.0, 3000.0], [10.0, 1.0], SimSettings(cold_start=0.0))
    timeline = result.timeline
    busy_until = 110.0
    return next(t for t, n in zip(timeline.times, timeline.replicas, strict=True) if t > busy_until and n == 0)


def test_knative_fast_path_removes_the_last_replica_without_the_grace_period() -> None:
    # 1 replica x concurrency 8 < targetBurstCapacity 211: the gateway is in the path (Knative's SKS
    # proxy mode), so the replica goes at the first tick after going inactive, not 30 s later.
    assert zero_at("knative") == pytest.approx(110 + 60 + 2, abs=3)


def test_knative_keeps_the_grace_period_when_burst_capacity_is_covered() -> None:
    # 1 replica x concurrency 300 >= 211: excess burst capacity >= 0, no proxy before going inactive.
    assert zero_at("knative", concurrency=300) == pytest.approx(110 + 60 + 30, abs=3)


def test_baseten_reaches_zero_when_its_scale_down_delay_has_passed() -> None:
    # window 60 s, then the 900 s scale-down delay; no retention on top (Baseten documents none).
    assert zero_at("baseten") == pytest.approx(110 + 60 + 900, abs=3)


def test_load_of_a_second_is_stamped_when_it_ends() -> None:
    # One long request at concurrency 1, woken from zero at t=100.3. Stamped at s (the old way), the
    # wake's stat and the 0.7 s of [100, 101) share a bucket: 1.7 / 0.7 -> 3 replicas. Stamped at s+1,
    # as Knative records a report when it arrives, the first average is <= 1 -> 2 replicas.
    result = replay("knative", cfg("knative", concurrency=1), [100.3], [40.0], SimSettings(cold_start=15.0))
    assert result.peak_replicas == 2


def test_average_after_a_quiet_spell_divides_by_seconds_with_data() -> None:
    # Knative's linear WindowAverage (kept for every profile, baseten included): after a whole window
    # without data, the average divides by the seconds recorded since, not by the 60 s window.
    scaler = Autoscaler(cfg("baseten", concurrency=1))
    scaler.record(1000.0, 7.0)
    decision = scaler.decide(1000.0, 1)
    assert decision.observed_stable == pytest.approx(7.0)
    scaler.record(1001.0, 1.0)
    assert scaler.decide(1001.0, 1).observed_stable == pytest.approx(4.0)
