"""One test per scaling rule per profile: each fails if that rule broke."""

from __future__ import annotations

import math

import pytest

from tests.autoscale.helpers import config, simulate
from tide.autoscale import Autoscaler

SCALING_PROFILES = ("knative", "coreweave", "baseten")
PANIC_PROFILES = ("knative", "coreweave")


def steady(scaler: Autoscaler, value: float, start: int, end: int) -> None:
    for t in range(start, end):
        scaler.record(float(t), value)


@pytest.mark.parametrize(("profile", "utilization"), [("knative", 0.70), ("coreweave", 0.85), ("baseten", 0.70)])
def test_desired_is_load_over_concurrency_times_utilization(profile: str, utilization: float) -> None:
    cfg = config(profile, concurrency=10)
    load = 17.0  # 17 / 7 -> 3 replicas at 70 %, 17 / 8.5 -> 2 at 85 %
    scaler = Autoscaler(cfg)
    scaler.decide(0.0, 1)
    expected = math.ceil(load / (10 * utilization))
    steady(scaler, load, 0, int(cfg.stable_window) + 2)
    decision = scaler.decide(cfg.stable_window + 1, expected)
    assert decision.desired == expected
    assert decision.observed_stable == pytest.approx(load)


@pytest.mark.parametrize(
    ("profile", "window"), [("knative", 60), ("coreweave", 180), ("baseten", 60), ("development", 60)]
)
def test_stable_observation_averages_the_stable_window(profile: str, window: int) -> None:
    scaler = Autoscaler(config(profile))
    end = 3 * window
    for t in range(end + 1):
        scaler.record(float(t), float(t))  # a ramp: the average reveals the window length
    decision = scaler.decide(float(end), 1)
    assert decision.observed_stable == pytest.approx(sum(range(end - window + 1, end + 1)) / window)


@pytest.mark.parametrize(("profile", "panic_window"), [("knative", 6), ("coreweave", 23)])
def test_panic_observation_averages_the_panic_window(profile: str, panic_window: int) -> None:
    scaler = Autoscaler(config(profile))
    for t in range(301):
        scaler.record(float(t), float(t))
    decision = scaler.decide(300.0, 1)
    assert decision.observed_panic == pytest.approx(sum(range(301 - panic_window, 301)) / panic_window)


@pytest.mark.parametrize("profile", PANIC_PROFILES)
@pytest.mark.parametrize(("panic_pods", "expect_panic"), [(4, True), (3, False)])
def test_panic_starts_when_short_window_demand_reaches_twice_ready(
    profile: str, panic_pods: int, expect_panic: bool
) -> None:
    cfg = config(profile)
    scaler = Autoscaler(cfg)
    scaler.decide(0.0, 1)
    steady(scaler, 0.0, 0, 400)
    steady(scaler, panic_pods * cfg.target, 400, 400 + int(cfg.panic_window))
    decision = scaler.decide(400.0 + cfg.panic_window - 1, 2)
    assert (decision.mode == "panic") is expect_panic
    if expect_panic:
        assert decision.desired >= panic_pods
        assert decision.reason.startswith("panic:")


def test_baseten_never_panics() -> None:
    cfg = config("baseten")
    scaler = Autoscaler(cfg)
    scaler.decide(0.0, 1)
    steady(scaler, 0.0, 0, 100)
    steady(scaler, 40 * cfg.target, 100, 106)
    decision = scaler.decide(105.0, 1)
    assert decision.mode == "stable"
    assert decision.desired < 40  # follows the diluted 60 s average, not the burst


@pytest.mark.parametrize("profile", PANIC_PROFILES)
def test_panic_never_scales_down_and_ends_after_a_calm_stable_window(profile: str) -> None:
    cfg = config(profile, {"scaleDownDelay": 0})
    burst_end = 20
    run = simulate(cfg, lambda t: 30 * cfg.target if t < burst_end else 0.0, 800)
    peak = max(d.desired for d in run.decisions.values())
    last_over = max(
        t
        for t, d in run.decisions.items()
        if math.ceil(d.observed_panic / cfg.target) / max(1, d.ready) >= cfg.panic_threshold
    )
    entered = run.first_time(lambda d: d.mode == "panic")
    assert entered is not None
    held = [run.decisions[t].desired for t in range(entered, last_over + int(cfg.stable_window) - 2, 2)]
    assert held == sorted(held)  # never decreases while panicking
    assert held[-1] == peak
    exit_time = run.first_time(lambda d: d.mode == "stable", after=entered)
    assert exit_time is not None
    assert exit_time > last_over + cfg.stable_window - 4
    assert run.desired(exit_time + 40) < peak


@pytest.mark.parametrize(
    ("profile", "ready", "limit"),
    [("knative", 2, 2000), ("coreweave", 2, 40), ("baseten", 2, None)],
)
def test_scale_up_rate_is_relative_to_ready_replicas(profile: str, ready: int, limit: int | None) -> None:
    cfg = config(profile, max_replicas=100_000, concurrency=1)
    scaler = Autoscaler(cfg)
    scaler.decide(0.0, 1)
    steady(scaler, 5000.0, 0, 200)
    decision = scaler.decide(199.0, ready)
    need = math.ceil(5000 / cfg.target)
    if limit is None:
        assert decision.desired == need
    else:
        assert decision.desired == limit
        assert decision.bounded_by == "scale-up rate"


def test_coreweave_scale_up_rate_applies_per_15s_period() -> None:
    cfg = config("coreweave", max_replicas=100_000, concurrency=1)
    scaler = Autoscaler(cfg)
    scaler.decide(0.0, 1)
    steady(scaler, 5000.0, 0, 200)
    first = scaler.decide(190.0, 1)
    assert first.desired == 20
    # 10 s later, 20 replicas are ready but the period (anchored at 1 ready) is not over.
    assert scaler.decide(200.0, 20).desired == 20
    assert scaler.decide(206.0, 20).desired == 400  # a new period: 20 x 20


@pytest.mark.parametrize(("profile", "expected"), [("knative", 5), ("coreweave", 9), ("baseten", 1)])
def test_scale_down_rate_is_relative_to_ready_replicas(profile: str, expected: int) -> None:
    cfg = config(profile, {"scaleDownDelay": 0})
    scaler = Autoscaler(cfg)
    scaler.decide(0.0, 1)  # created with one ready replica: no restart panic
    steady(scaler, 0.5, 0, 200)
    decision = scaler.decide(199.0, 10)
    assert decision.desired == expected
    if profile != "baseten":
        assert decision.bounded_by == "scale-down rate"


@pytest.mark.parametrize(("profile", "delay"), [("knative", 0), ("coreweave", 60), ("baseten", 900)])
def test_scale_down_waits_for_the_delay_window(profile: str, delay: int) -> None:
    overrides = {"panicThresholdPercentage": 1000} if profile != "baseten" else {}
    with_delay = config(profile, overrides)
    without = config(profile, {**overrides, "scaleDownDelay": 0})
    drop = 400
    load = lambda t: 3.5 * with_delay.target if t < drop else 0.0  # noqa: E731
    a = simulate(with_delay, load, drop + 1400)
    b = simulate(without, load, drop + 1400)
    peak = a.desired(drop)
    assert peak == b.desired(drop) == 4
    t0 = b.first_time(lambda d: d.desired < peak, after=drop)
    assert t0 is not None
    if delay == 0:
        assert [d.desired for d in a.decisions.values()] == [d.desired for d in b.decisions.values()]
        return
    for t in range(t0, t0 + delay - 4, 2):
        assert a.desired(t) == peak, t
    assert a.desired(t0 + 2) == peak and a.decisions[t0].bounded_by == "scale-down delay"
    assert a.desired(t0 + delay + 4) < peak


@pytest.mark.parametrize(
    ("profile", "idle_to_zero"),
    [
        # Knative's fast path: below targetBurstCapacity / concurrency replicas the gateway is already in
        # the path, so the last replica goes at the first tick after going inactive, without the grace.
        ("knative", 60 + 0 + 2),
        ("coreweave", 180 + 60 + 1800),  # window, scale-down delay, 30 min retention
        ("baseten", 60 + 900),  # window, delay: zero once the delay has passed (no retention on top)
        ("development", 60 + 900 + 2),
    ],
)
def test_last_replica_goes_after_window_delay_and_retention_or_grace(profile: str, idle_to_zero: int) -> None:
    cfg = config(profile)
    idle_from = 10
    run = simulate(cfg, lambda t: 1.0 if 2 <= t < idle_from else 0.0, idle_from + idle_to_zero + 200)
    zero_at = run.first_time(lambda d: d.desired == 0, after=idle_from)
    assert zero_at is not None
    assert abs(zero_at - (idle_from + idle_to_zero)) <= 6
    assert all(run.desired(t) >= 1 for t in range(4, zero_at - 2, 2))


@pytest.mark.parametrize("profile", ("knative", "coreweave", "baseten", "development"))
def test_request_at_zero_wakes_at_once(profile: str) -> None:
    cfg = config(profile)
    run = simulate(cfg, lambda t: 1.0 if t < 4 or t == 5001 else 0.0, 5004)
    assert run.desired(4998) == 0
    wake = run.decisions[5000]  # the wake at t=5001 lands on the 5000 tick
    assert wake.desired >= 1
    assert wake.activity == "activating"


def test_activation_scale_is_the_minimum_non_zero_scale() -> None:
    scaler = Autoscaler(config("knative", {"activationScale": 3, "initialScale": 0}))
    scaler.decide(0.0, 0)
    assert scaler.wake(1.0).desired == 3
    steady(scaler, 0.1, 2, 30)
    assert scaler.decide(30.0, 3).desired == 3


@pytest.mark.parametrize(("profile", "expected"), [("knative", math.floor(4 * 100 - 211 - 50)), ("coreweave", 0)])
def test_excess_burst_capacity(profile: str, expected: int) -> None:
    scaler = Autoscaler(config(profile, concurrency=100))
    scaler.decide(0.0, 1)
    steady(scaler, 50.0, 0, 200)
    assert scaler.decide(199.0, 4).excess_burst_capacity == expected


@pytest.mark.parametrize("profile", SCALING_PROFILES)
def test_min_and_max_bound_the_decision(profile: str) -> None:
    low = simulate(config(profile, min_replicas=2), lambda t: 0.0, 3000)
    assert all(d.desired >= 2 for d in low.decisions.values())
    assert low.decisions[2998].bounded_by == "min"
    high = simulate(config(profile, max_replicas=3), lambda t: 1000.0, 400)
    assert max(d.desired for d in high.decisions.values()) == 3
    assert high.decisions[398].bounded_by == "max"


@pytest.mark.parametrize("profile", SCALING_PROFILES)
def test_initial_scale_holds_until_reached(profile: str) -> None:
    scaler = Autoscaler(config(profile, {"initialScale": 4}))
    scaler.record(0.0, 0.0)
    assert scaler.decide(0.0, 0).desired == 4
    assert scaler.decide(2.0, 2).desired == 4
    scaler.decide(4.0, 4)  # reached: initialised
    steady(scaler, 0.0, 1, 400)
    assert scaler.decide(400.0, 4).desired < 4


@pytest.mark.parametrize("profile", PANIC_PROFILES)
def test_restart_with_ready_replicas_does_not_scale_down_for_a_window(profile: str) -> None:
    cfg = config(profile)
    scaler = Autoscaler(cfg)
    steady(scaler, 0.0, 0, 10)
    first = scaler.decide(10.0, 6)  # a new autoscaler for a deployment that already runs 6
    assert first.mode == "panic" and first.desired == 6
    assert scaler.decide(10.0 + cfg.stable_window - 2, 6).desired == 6


def test_update_config_keeps_history() -> None:
    scaler = Autoscaler(config("knative", concurrency=10))
    scaler.decide(0.0, 1)
    steady(scaler, 14.0, 0, 100)
    assert scaler.decide(99.0, 2).desired == 2  # 14 / 7
    scaler.update_config(config("knative", concurrency=2))
    decision = scaler.decide(100.0, 2)
    assert decision.observed_stable == pytest.approx(14.0)
    assert decision.desired >= 4  # 14 / 1.4 = 10, rate-limited only upward by 1000x


def test_update_config_to_longer_window_keeps_recent_seconds() -> None:
    scaler = Autoscaler(config("knative"))
    scaler.decide(0.0, 1)
    steady(scaler, 7.0, 0, 60)
    scaler.update_config(config("knative", {"window": 120}))
    assert scaler.decide(59.0, 1).observed_stable == pytest.approx(7.0)


def test_reason_is_one_readable_line() -> None:
    scaler = Autoscaler(config("coreweave", concurrency=1))
    scaler.decide(0.0, 1)
    steady(scaler, 0.0, 0, 300)
    steady(scaler, 14.0, 300, 323)
    decision = scaler.decide(322.0, 4)
    assert decision.reason == "panic: concurrency 14.0 over 23 s vs 4 ready x target 0.85 -> 17"
    assert decision.to_dict()["reason"] == decision.reason
