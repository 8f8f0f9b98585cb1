"""Parking through a real tide up: a scale-down to zero parks the replica, the next request wakes the same
process, and a bounded load that crosses park and wake several times sees no failed request; a parked
replica whose GPU is given away is stopped, and the next request starts a new one cleanly."""

from __future__ import annotations

import contextlib
import itertools
import math
import sqlite3
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
            # It holds its weights in host memory (the tiny model's), as the engine reported at the park.
            assert status["replicas"][0]["hostMemoryBytes"] > 100_000
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


def gpu_spec(name: str, priority: int, **autoscaling: Any) -> dict[str, Any]:
    return tiny_spec(
        name,
        resources={"instanceType": "H100-VIRTUAL", "gpuCount": 1},
        autoscaling={"priority": priority, "profile": "knative", "window": "6s", **autoscaling},
    )


def test_a_parked_replica_whose_gpu_is_taken_is_stopped_and_a_restart_loses_nothing(
    fleet: TideProcess,
) -> None:
    fleet.apply(gpu_spec(NAME, 0, min=0, max=1, initialScale=0, scaleToZeroGracePeriod="1s", parking={"enabled": True}))
    wait_status(fleet, "at zero", lambda s: s.get("state") == "STATUS_READY" and not s["replicas"], 30)
    assert request(fleet, stream=False) == 200
    first = wait_status(fleet, "parked", parked)["replicas"][0]["id"]

    # A higher-priority deployment takes every GPU, the parked replica's included: it is stopped.
    fleet.apply(gpu_spec("tiny-batch", 10, min=2, max=2))
    fleet.wait_for("tiny-batch", "STATUS_READY", timeout=180, ready=2)
    wait_status(fleet, "stopped", lambda s: not s["replicas"] and not s.get("parkedReplicas"), 60)

    # One GPU comes back: the next request starts a new replica there (a cold start, not a wake).
    fleet.apply(gpu_spec("tiny-batch", 10, min=1, max=1))
    fleet.wait_for("tiny-batch", "STATUS_READY", timeout=60, ready=1)
    assert request(fleet, stream=True) == 200
    status = fleet.status(NAME)
    assert [r["id"] for r in status["replicas"]] != [first] and status["readyReplicas"] == 1

    # Never two replicas holding one GPU at once (parked time is a run on no GPU, and shares nothing).
    with contextlib.closing(sqlite3.connect(fleet.data_dir / "tide.db")) as db:
        runs = db.execute(
            "SELECT replica_id, instance_id, started_at, stopped_at FROM replica_runs WHERE gpus > 0"
        ).fetchall()
    for (a, inst_a, start_a, stop_a), (b, inst_b, start_b, stop_b) in itertools.combinations(runs, 2):
        if inst_a == inst_b:
            overlap = min(stop_a or math.inf, stop_b or math.inf) - max(start_a, start_b)
            assert overlap <= 0, f"{a} and {b} both held {inst_a} for {overlap:.2f}s: {runs}"

    # A restart of tide up with a parked replica loses nothing: the deployment is there, at zero, and serves.
    wait_status(fleet, "parked again", parked)
    fleet.stop()
    fleet.start()
    wait_status(fleet, "back at zero", lambda s: s.get("state") == "STATUS_READY" and not s["replicas"], 60)
    assert request(fleet, stream=False) == 200
