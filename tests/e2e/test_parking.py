"""Parking through a real tide up: a scale-down to zero parks the replica, the next request wakes the same
process, and a bounded load that crosses park and wake several times sees no failed request."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec

NAME = "tiny-park"


def wait_status(tide: TideProcess, what: str, check: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = tide.status(NAME)
        if check(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"{NAME}: never {what}; last status {status}\n{tide.server_log()}")


def parked(status: dict[str, Any]) -> bool:
    replicas = status["replicas"]
    return status["readyReplicas"] == 0 and len(replicas) == 1 and replicas[0]["phase"] == "parked"


def request(tide: TideProcess, stream: bool) -> int:
    body = {"model": NAME, "prompt": "The sea", "max_tokens": 4, "stream": stream}
    with httpx.Client(timeout=120) as client:
        response = client.post(f"{tide.gateway_url}/completions", json=body)
        return response.status_code if b"[DONE]" in response.content or not stream else -1


def test_scale_down_parks_and_the_next_requests_wake_the_same_replica(clean_tide: TideProcess) -> None:
    clean_tide.apply(
        tiny_spec(
            NAME,
            autoscaling={
                "min": 0,
                "max": 1,
                "concurrency": 4,
                "initialScale": 0,
                "profile": "knative",
                "window": "6s",
                "scaleToZeroGracePeriod": "1s",
                "parking": {"enabled": True, "retention": "10m"},
            },
        )
    )
    wait_status(clean_tide, "at zero", lambda s: s.get("state") == "STATUS_READY" and not s["replicas"], 30)

    codes: list[int] = []
    pids: set[int] = set()
    replica_ids: set[str] = set()
    with ThreadPoolExecutor(4) as pool:
        for _cycle in range(3):
            # A burst at zero (cold the first time, parked after): every request is answered.
            codes += pool.map(lambda i: request(clean_tide, stream=i % 2 == 0), range(4))
            status = clean_tide.status(NAME)
            assert status["readyReplicas"] == 1, status
            pids.update(r["pid"] for r in status["replicas"] if "pid" in r)
            status = wait_status(clean_tide, "parked", parked)
            replica_ids.add(status["replicas"][0]["id"])
            assert status["parkedReplicas"] == 1
            assert any(c["type"] == "Parked" for c in status["conditions"])
            assert status["state"] == "STATUS_READY"

    assert codes == [200] * 12
    assert len(replica_ids) == 1 and len(pids) == 1, (replica_ids, pids)  # woken, never started again
    times = status["replicas"][0]["phaseTimes"]
    assert {"parking", "parked", "waking", "ready"} <= set(times)

    shown = clean_tide.cli("get", "deployment", NAME).stdout
    assert "parked" in shown
    metrics = httpx.get(f"{clean_tide.api_url}/metrics", timeout=10).text
    assert f'tide_replica_wakes_total{{deployment="{NAME}"}} 2.0' in metrics
    assert f'tide_replica_parks_total{{deployment="{NAME}"}} 3.0' in metrics

    # Parked time is metered apart from running (GPU) time.
    with clean_tide.api() as api:
        usage = api.get("/usage").json()
    (mine,) = [d for d in usage["deployments"] if d["deploymentId"] == NAME]
    assert mine["parkedMinutes"] >= 1
    assert all(r["gpuMinutes"] == 0 for r in mine["replicas"] if r.get("parked"))

    # Parking switched off: the parked replica is stopped, and the deployment is at zero.
    spec = tiny_spec(NAME, autoscaling={"min": 0, "max": 1, "initialScale": 0, "parking": {"enabled": False}})
    clean_tide.apply(spec)
    wait_status(clean_tide, "stopped", lambda s: not s["replicas"], 60)
