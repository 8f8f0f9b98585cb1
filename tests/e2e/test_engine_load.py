"""The engines' own load reaches the autoscaler: requests sent straight to a replica, bypassing the gateway,
are seen in the replica's /metrics, shown in status and scale the deployment up."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec

NAME = "tiny-direct"


def send_directly(replica_url: str, stop: threading.Event, failures: list[str]) -> None:
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            body = {"model": NAME, "prompt": "The sea", "max_tokens": 200}
            response = client.post(f"{replica_url}/completions", json=body)
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:200]}")


def wait_status(tide: TideProcess, check: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = tide.status(NAME)
        if check(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"status never matched; last {status}\n{tide.server_log()}")


def test_load_that_bypasses_the_gateway_is_seen_and_scales_up(clean_tide: TideProcess) -> None:
    clean_tide.apply(
        tiny_spec(
            NAME,
            autoscaling={
                "min": 1,
                "max": 2,
                "concurrency": 1,
                "targetUtilization": 100,
                "profile": "knative",
                "window": "6s",
            },
        )
    )
    status = clean_tide.wait_for(NAME, "STATUS_READY", ready=1, timeout=60)
    replica_url = status["replicas"][0]["url"]

    stop = threading.Event()
    failures: list[str] = []
    clients = [threading.Thread(target=send_directly, args=(replica_url, stop, failures)) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        # The gateway saw none of these requests; the engine's running/waiting gauges did.
        busy = wait_status(clean_tide, lambda s: s.get("engineLoad", {}).get("runningRequests", 0) >= 1)
        replica_load = [r["load"] for r in busy["replicas"] if "load" in r]
        assert replica_load and replica_load[0]["runningRequests"] + replica_load[0]["waitingRequests"] >= 1
        metrics = httpx.get(f"{clean_tide.api_url}/metrics").text
        assert f'tide_replica_engine_requests{{deployment="{NAME}"' in metrics
        detail = clean_tide.cli("get", "deployment", NAME).stdout
        assert "load:" in detail and "running" in detail and "LOAD" in detail, detail
        # ...and the autoscaler acted on them: 3 requests in flight against a target of 1 per replica.
        scaled = wait_status(clean_tide, lambda s: s["desiredReplicas"] == 2)
        assert scaled["lastScalingDecision"]["observedStable"] > 0 or scaled["lastScalingDecision"]["observedPanic"] > 0
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=120)
    assert not failures, failures
    # Idle again: the next scrape reads nothing running.
    wait_status(clean_tide, lambda s: s.get("engineLoad", {}).get("runningRequests", 1) == 0, timeout=30)
