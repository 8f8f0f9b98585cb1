"""Live autoscaling through a real tide up: from zero on the first request, up under load, down, to zero."""

from __future__ import annotations

import re
import time

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec
from tests.e2e.load import complete, load_until, wait_until_gone


def test_scales_from_zero_up_down_and_back_to_zero(clean_tide: TideProcess) -> None:
    clean_tide.apply(
        tiny_spec(
            "tiny-scale",
            autoscaling={
                "min": 0,
                "max": 3,
                "concurrency": 1,
                "initialScale": 0,
                "targetUtilization": 100,
                "profile": "knative",
                "window": "6s",
                "scaleToZeroGracePeriod": "2s",
            },
        )
    )
    status = clean_tide.wait_for("tiny-scale", "STATUS_READY", timeout=30)
    assert status["readyReplicas"] == 0 and status["desiredReplicas"] == 0
    assert any(c["type"] == "ScaledToZero" for c in status["conditions"])

    # The first request at zero waits in the gateway while a replica starts, then succeeds.
    with httpx.Client(timeout=120) as client:
        started = time.monotonic()
        assert complete(clean_tide, client, "tiny-scale") == 200
        cold = time.monotonic() - started
    assert clean_tide.status("tiny-scale")["readyReplicas"] == 1

    # Sustained load above one replica's target: replicas go up (load until a second one is ready).
    burst = load_until(
        clean_tide, "tiny-scale", 6, lambda: clean_tide.status("tiny-scale")["readyReplicas"] >= 2, timeout_s=60
    )
    assert burst.reached, clean_tide.status("tiny-scale")
    assert burst.failures == []
    decision = clean_tide.status("tiny-scale")["lastScalingDecision"]
    assert decision["desired"] >= 2 and "->" in decision["reason"]

    # Idle: back to zero replicas.
    status = wait_until_gone(lambda: clean_tide.status("tiny-scale"))
    assert status["desiredReplicas"] == 0

    # And back on the next request.
    with httpx.Client(timeout=120) as client:
        assert complete(clean_tide, client, "tiny-scale") == 200

    # Cold starts are measured by phase, and from the waking request to the first ready replica.
    metrics = httpx.get(f"{clean_tide.api_url}/metrics").text
    assert 'tide_wake_to_ready_seconds_count{deployment="tiny-scale"} 2.0' in metrics
    for phase in ("downloading_weights", "engine_load", "total"):
        assert f'tide_replica_start_phase_seconds_count{{deployment="tiny-scale",phase="{phase}"}}' in metrics
    # The gateway's traffic: every request above was routed to the deployment, none failed.
    routed = re.search(r'^tide_gateway_requests_total\{deployment="tiny-scale"\} (\S+)$', metrics, re.MULTILINE)
    assert routed is not None and float(routed.group(1)) >= 2, metrics
    assert "tide_gateway_errors_total{code=" not in metrics
    print(f"cold start through the gateway: {cold:.1f} s")
