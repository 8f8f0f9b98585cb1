"""Two deployments contend for a declared inventory of virtual GPU instances on the local backend."""

from __future__ import annotations

import contextlib
import itertools
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec


def wait_for_condition(fleet: TideProcess, deployment_id: str, condition: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = fleet.status(deployment_id)
        if any(c["type"] == condition for c in status.get("conditions", [])):
            return status
        time.sleep(0.2)
    raise AssertionError(f"{deployment_id} never showed {condition}; last status {status}\n{fleet.server_log()}")


def assert_no_instance_shared(database: Path) -> None:
    with contextlib.closing(sqlite3.connect(database)) as db:
        runs = db.execute("SELECT replica_id, instance_id, started_at, stopped_at FROM replica_runs").fetchall()
    assert len(runs) >= 3, runs
    for (a, instance_a, start_a, stop_a), (b, instance_b, start_b, stop_b) in itertools.combinations(runs, 2):
        if instance_a == instance_b:
            overlap = min(stop_a or math.inf, stop_b or math.inf) - max(start_a, start_b)
            assert overlap <= 0, f"{a} and {b} both ran on {instance_a} for {overlap:.2f}s: {runs}"


def spec(name: str, priority: int, **autoscaling: Any) -> dict[str, Any]:
    return tiny_spec(
        name,
        resources={"instanceType": "H100-VIRTUAL", "gpuCount": 1},
        autoscaling={"priority": priority, "profile": "baseten", **autoscaling},
    )


class SteadyTraffic:
    """One client sending requests back to back: about one request in flight at all times."""

    def __init__(self, gateway_url: str, model: str) -> None:
        self.gateway_url, self.model = gateway_url, model
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                response = client.post(
                    f"{self.gateway_url}/completions",
                    json={"model": self.model, "prompt": "the tide", "max_tokens": 24},
                )
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")

    def __enter__(self) -> SteadyTraffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=90)


def test_higher_priority_takes_capacity_and_gives_it_back(fleet: TideProcess) -> None:
    # The low-priority deployment wants both instances: one request always in flight against a target of
    # 0.7 per replica (concurrency 1 x 70%) asks for 2, and min 0 leaves both above its min. Without the
    # traffic it would settle at 1 and have nothing to wait for.
    fleet.apply(spec("batch-model", priority=100, min=0, max=2, initialScale=2, concurrency=1, window=6))
    fleet.wait_for("batch-model", "STATUS_READY", ready=2)
    with SteadyTraffic(fleet.gateway_url, "batch-model") as traffic:
        # The high-priority one needs one instance: it preempts a low-priority replica (drained first).
        fleet.apply(spec("chat-model", priority=900, min=1, max=1))
        fleet.wait_for("chat-model", "STATUS_READY", ready=1)
        low = wait_for_condition(fleet, "batch-model", "WaitingForCapacity")
        assert low["readyReplicas"] == 1
        waiting = [c for c in low["conditions"] if c["type"] == "WaitingForCapacity"]
        assert "no free h100-virtual" in waiting[0]["message"] and "us-east-04a" in waiting[0]["message"]

        # When the high-priority deployment no longer needs it, the capacity goes back.
        fleet.apply({**spec("chat-model", priority=900, min=1, max=1), "disabled": True})
        status = fleet.wait_for("batch-model", "STATUS_READY", ready=2)
        assert not [c for c in status["conditions"] if c["type"] == "WaitingForCapacity"]
    # Preemption drained the replica first: the low-priority client never saw an error.
    assert not traffic.errors, traffic.errors

    # The preempted replica gave its GPU back before the high-priority one started on it: no two runs ever
    # overlapped on one instance (on a real GPU the second engine would not fit in memory).
    assert_no_instance_shared(fleet.data_dir / "tide.db")

    # Usage was metered per replica while they ran.
    with fleet.api() as api:
        usage = api.get("/usage").json()
    by_deployment = {d["deploymentId"]: d for d in usage["deployments"]}
    assert by_deployment["batch-model"]["gpuMinutes"] >= 2
    assert by_deployment["chat-model"]["gpuMinutes"] >= 1


def test_parameters_and_claims_come_from_the_inventory(fleet: TideProcess) -> None:
    with fleet.api() as api:
        params = api.get("/deployments/parameters").json()
        assert params["zoneInstanceTypes"] == {"us-east-04a": ["h100-virtual"]}
        bad = api.post(
            "/capacityclaims",
            json={
                "resources": {
                    "instanceId": "h100-virtual",
                    "instanceCount": 1,
                    "capacityType": "CAPACITY_TYPE_CUSTOMER",
                    "zones": ["eu-west"],
                }
            },
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("resources.")
