"""A policy plug-in (peak_policy.py: one module, one registration) runs live and in `tide sim`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.autoscale import peak_policy  # noqa: F401 - registers `peak-test`
from tide.autoscale import Autoscaler, LoadHistory, profile_names, resolve_config
from tide.control.scaling import DeploymentScaler
from tide.errors import FieldError
from tide.sim.cli import sim_command
from tide.sim.engine import SimSettings, replay
from tide.spec import InstanceTypeInfo, default_catalog, parse_deployment

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 16, 0, 0),))


def spec(**autoscaling: Any) -> Any:
    raw = {
        "name": "tiny-chat",
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"profile": "peak-test", **autoscaling},
    }
    return parse_deployment(raw, CATALOG)


def test_registration_makes_a_selectable_profile_with_its_own_option() -> None:
    assert "peak-test" in profile_names()
    cfg = resolve_config("peak-test", {"peakWindow": 4}, min_replicas=0, max_replicas=5, concurrency=2)
    assert (cfg.policy, cfg.option("peakWindow"), cfg.target) == ("peak-test", 4.0, 2.0)
    with pytest.raises(FieldError, match=r"autoscaling\.peakWindow"):
        resolve_config("peak-test", {"peakWindow": 0}, min_replicas=0, max_replicas=5, concurrency=2)
    with pytest.raises(FieldError, match=r"autoscaling\.peakWindow"):
        resolve_config("knative", {"peakWindow": 4}, min_replicas=0, max_replicas=5, concurrency=2)


def test_live_scaler_runs_the_policy_and_says_which_mechanism_decided() -> None:
    s = DeploymentScaler(spec(min=0, max=5, concurrency=2, initialScale=0, peakWindow="4"), now=0.0)
    s.wake(0.5)
    assert s.current == 1
    for t in range(1, 5):
        s.record(float(t), concurrency=7.0 if t == 3 else 1.0)
        s.desired(float(t), ready_replicas=s.current)
    assert s.current == 4  # the 7-request second at 2 per replica (decided at the t=4 tick)
    assert s.last is not None and s.last.mode == "peak"
    for t in range(5, 14):
        s.record(float(t), concurrency=1.0)
        s.desired(float(t), ready_replicas=s.current)
    assert s.current == 1  # the peak left the window
    assert s.status()["lastScalingDecision"]["reason"].startswith("peak: concurrency 1.0 over 4 s")


def test_wrapper_applies_max_to_whatever_the_policy_proposes() -> None:
    cfg = resolve_config("peak-test", {}, min_replicas=0, max_replicas=3, concurrency=1)
    scaler = Autoscaler(cfg)
    scaler.record(0.0, 50.0)
    decision = scaler.decide(0.0, 1)
    assert decision.desired == 3 and decision.bounded_by == "max"


def test_spec_rejects_a_bad_option_by_name() -> None:
    with pytest.raises(FieldError, match=r"autoscaling\.peakWindow"):
        spec(peakWindow=0)


def test_tide_sim_replays_the_policy_beside_knative(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input,output\n" + "".join(f"{i * 0.25},500,40\n" for i in range(200)))
    result = CliRunner().invoke(sim_command, [str(trace), "--policies", "knative,peak-test", "--cold-start", "5s"])
    assert result.exit_code == 0, result.output
    assert "peak-test" in result.output


def test_sim_and_live_take_the_same_decisions_for_the_same_load() -> None:
    cfg = resolve_config("peak-test", {"initialScale": 0}, min_replicas=0, max_replicas=10, concurrency=1)
    arrivals = [float(i) / 4 for i in range(40)] + [60.0]
    result = replay("peak-test", cfg, arrivals, [1.0] * len(arrivals), SimSettings(cold_start=0.0))
    assert result.requests == len(arrivals)
    assert result.peak_replicas >= 4  # 4 req/s of 1 s each at concurrency 1


def test_load_history_averages_by_seconds_with_data_after_a_quiet_spell() -> None:
    history = LoadHistory(60)
    history.record(100.0, 6.0)
    history.record(101.0, 0.0)
    assert history.average(101.0, 60) == pytest.approx(3.0)  # 2 seconds with data, not 60
    history.record(300.0, 4.0)  # after a quiet window: start afresh
    assert history.average(300.0, 60) == pytest.approx(4.0)
