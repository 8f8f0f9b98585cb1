"""The controller's scaler: gateway samples in, decisions every tick, wake-up at zero, history out."""

from __future__ import annotations

from typing import Any

from tide.control.scaling import DeploymentScaler
from tide.spec import InstanceTypeInfo, default_catalog, parse_deployment

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 16, 0, 0),))


def scaler(**autoscaling: Any) -> DeploymentScaler:
    raw = {
        "name": "tiny-chat",
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"profile": "knative", **autoscaling},
    }
    return DeploymentScaler(parse_deployment(raw, CATALOG), now=0.0)


def test_starts_at_initial_scale_within_bounds() -> None:
    assert scaler(min=2, max=4).current == 2
    assert scaler(min=0, max=4, initialScale=0).current == 0


def test_load_scales_up_and_history_explains_it() -> None:
    s = scaler(min=1, max=5, concurrency=2, window="6s")
    t = 0.0
    for t in range(1, 13):
        s.record(float(t), concurrency=8.0)
        s.desired(float(t), ready_replicas=1)
    assert s.current >= 4  # 8 in flight / (2 x 0.7) -> 6, bounded by max 5 or rates
    status = s.status()
    assert status["lastScalingDecision"]["desired"] == s.current
    assert status["scalingHistory"] and "->" in status["scalingHistory"][0]["reason"]


def test_decides_only_every_tick() -> None:
    s = scaler(min=1, max=5, concurrency=1, window="6s")
    s.record(0.5, concurrency=50.0)
    assert s.desired(0.5, ready_replicas=1) == 1  # before the first 2 s tick: unchanged
    s.record(2.0, concurrency=50.0)
    assert s.desired(2.0, ready_replicas=1) > 1


def test_wake_at_zero_asks_for_a_replica_at_once() -> None:
    s = scaler(min=0, max=3, initialScale=0)
    assert s.current == 0
    s.wake(0.1)
    assert s.current == 1
    assert s.status()["lastScalingDecision"]["desired"] == 1


def test_idle_deployment_with_min_zero_goes_to_zero() -> None:
    s = scaler(min=0, max=3, window="6s", scaleToZeroGracePeriod="2s")
    for t in range(0, 40):
        s.record(float(t), concurrency=0.0)
        s.desired(float(t), ready_replicas=s.current)
    assert s.current == 0


def test_spec_update_keeps_bounds() -> None:
    s = scaler(min=1, max=5)
    raw = {
        "name": "tiny-chat",
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": 3, "max": 5},
    }
    s.update_spec(parse_deployment(raw, CATALOG))
    assert s.current == 3
