"""Two deployments contend for a declared inventory of virtual GPU instances on the local backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import TideProcess, make_buckets, tiny_spec

INVENTORY = """
instanceTypes:
  - {id: h100-virtual, gpuModel: H100, gpus: 1, memoryGib: 80}
instances:
  - {type: h100-virtual, zone: us-east-04a, count: 2}
"""


@pytest.fixture()
def fleet(tmp_path: Path, tiny_model: Path) -> Iterator[TideProcess]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    server = TideProcess(tmp_path / "data", make_buckets(tmp_path, tiny_model), ("--inventory", str(inventory)))
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


def spec(name: str, priority: int, **autoscaling: Any) -> dict[str, Any]:
    return tiny_spec(
        name,
        resources={"instanceType": "H100-VIRTUAL", "gpuCount": 1},
        autoscaling={"priority": priority, "profile": "baseten", **autoscaling},
    )


def test_higher_priority_takes_capacity_and_gives_it_back(fleet: TideProcess) -> None:
    # The low-priority deployment fills both instances (min 0, so both replicas are above its min).
    fleet.apply(spec("batch-model", priority=100, min=0, max=2, initialScale=2))
    fleet.wait_for("batch-model", "STATUS_READY", ready=2)

    # The high-priority one needs one instance: it preempts a low-priority replica (drained first).
    fleet.apply(spec("chat-model", priority=900, min=1, max=1))
    fleet.wait_for("chat-model", "STATUS_READY", ready=1)
    low = fleet.wait_for("batch-model", "STATUS_READY", ready=1)
    waiting = [c for c in low["conditions"] if c["type"] == "WaitingForCapacity"]
    assert waiting, low["conditions"]
    assert "no free h100-virtual" in waiting[0]["message"] and "us-east-04a" in waiting[0]["message"]

    # When the high-priority deployment no longer needs it, the capacity goes back.
    fleet.apply({**spec("chat-model", priority=900, min=1, max=1), "disabled": True})
    status = fleet.wait_for("batch-model", "STATUS_READY", ready=2)
    assert not [c for c in status["conditions"] if c["type"] == "WaitingForCapacity"]

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
