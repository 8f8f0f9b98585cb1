"""The hosted API reference's own example bodies, written here field for field from API.md, are accepted
and answered in the hosted response shape: `{"deployment": {"spec", "status"}}`, `status.status` the
state, RFC 3339 `createdAt` / `updatedAt`, conditions with `lastUpdateTime`, `reason`, `message`, `zone`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.claims.conftest import DECLARED, TOKEN, ZONE_A, Clock, app_auth
from tide.api.app import ApiContext, create_app
from tide.api.claims import ClaimsContext, claims_router
from tide.api.parameters import parameters_json
from tide.scheduling import declared_inventory
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

BASE = "/v1alpha1/inference"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CATALOG = default_catalog(
    builtin_version="0.1.0",
    vllm_versions=("0.11.2",),
    instance_types=(InstanceTypeInfo("H100-8x", "H100", 8, 1024, 128, zones=(ZONE_A,)),),
)

# POST /gateways, every field the hosted reference lists (one auth type, one routing strategy).
CREATE_GATEWAY: dict[str, Any] = {
    "id": "inference-edge",
    "name": "inference-edge",
    "zones": [ZONE_A],
    "coreWeaveAuth": {},
    "endpointConfiguration": {"additionalDns": ["inference.example.com"]},
    "pathBasedRouting": {},
}

# POST /deployments, every field the hosted reference lists.
CREATE_DEPLOYMENT: dict[str, Any] = {
    "id": "llama-chat-prod",
    "name": "llama-chat-prod",
    "gatewayIds": ["default", "inference-edge"],
    "runtime": {"engine": "vllm", "version": "0.11.2", "engineConfig": {"max-model-len": "8192"}},
    "resources": {"instanceType": "H100-8x", "gpuCount": 1},
    "model": {"name": "llama-3-8b-instruct", "bucket": "models", "path": "llama/8b-instruct"},
    "autoscaling": {
        "min": 1,
        "max": 4,
        "priority": 500,
        "concurrency": 8,
        "capacityClasses": ["CAPACITY_CLASS_RESERVED"],
    },
    "traffic": {"weight": 100},
    "disabled": False,
}

# POST /capacityclaims, every field the hosted reference lists.
CREATE_CLAIM: dict[str, Any] = {
    "id": "team-h100",
    "name": "team-h100",
    "resources": {
        "instanceId": "h100-8x",
        "instanceCount": 2,
        "capacityType": "CAPACITY_TYPE_CUSTOMER",
        "zones": [ZONE_A],
    },
}


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    clock = Clock()
    app = create_app(
        ApiContext(
            store=store,
            catalog=lambda: CATALOG,
            token=TOKEN,
            wake_controller=lambda: None,
            logs=lambda deployment_id, tail, after: {},
            parameters=lambda: parameters_json(CATALOG),
            clock=clock,
        )
    )
    inventory = declared_inventory(DECLARED)
    claims = ClaimsContext(store=store, inventory=lambda: inventory, wake_controller=lambda: None, clock=clock)
    app.include_router(claims_router(claims, app_auth(app)))
    yield TestClient(app, headers={"authorization": f"Bearer {TOKEN}"})
    store.close()


def assert_hosted_status(status: dict[str, Any], state: str) -> None:
    assert status["status"] == state
    assert RFC3339.match(status["createdAt"]) and RFC3339.match(status["updatedAt"]), status
    assert "state" not in status  # one name for the state: status.status
    for condition in status["conditions"]:
        assert set(condition) >= {"type", "status", "lastUpdateTime", "reason", "message", "zone"}
        assert RFC3339.match(condition["lastUpdateTime"])


def test_create_gateway_example_is_accepted_and_echoed(client: TestClient) -> None:
    created = client.post(f"{BASE}/gateways", json=CREATE_GATEWAY)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"gateway"}
    assert body["gateway"]["spec"] == CREATE_GATEWAY
    assert_hosted_status(body["gateway"]["status"], "STATUS_READY")
    assert client.get(f"{BASE}/gateways/inference-edge").json() == body


def test_create_deployment_example_is_accepted_and_echoed(client: TestClient) -> None:
    assert client.post(f"{BASE}/gateways", json=CREATE_GATEWAY).status_code == 201
    created = client.post(f"{BASE}/deployments", json=CREATE_DEPLOYMENT)
    assert created.status_code == 201, created.text
    assert "deprecation" not in created.headers
    body = created.json()
    assert set(body) == {"deployment"}
    deployment = body["deployment"]
    spec = deployment["spec"]
    for key, value in CREATE_DEPLOYMENT.items():  # everything sent comes back as sent ...
        if isinstance(value, dict):
            assert {k: spec[key][k] for k in value} == value, key
        else:
            assert spec[key] == value, key
    assert spec["autoscaling"]["maxQueue"] == 1000  # ... plus Tide's extensions, defaults filled in
    assert_hosted_status(deployment["status"], "STATUS_CREATING")
    assert client.get(f"{BASE}/deployments/llama-chat-prod").json() == body
    assert client.get(f"{BASE}/deployments").json() == {"deployments": [deployment]}


def test_conditions_are_shown_in_the_hosted_shape(client: TestClient, tmp_path: Path) -> None:
    client.post(f"{BASE}/gateways", json=CREATE_GATEWAY)
    client.post(f"{BASE}/deployments", json=CREATE_DEPLOYMENT)
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    stored = {
        "type": "WaitingForCapacity",
        "status": "True",
        "reason": "WaitingForCapacity",
        "message": "no H100-8x free",
        "lastTransitionTime": 1764000000.5,
    }
    store.set_status("llama-chat-prod", {"state": "STATUS_CREATING", "conditions": [stored], "readyReplicas": 0})
    store.close()
    status = client.get(f"{BASE}/deployments/llama-chat-prod").json()["deployment"]["status"]
    assert_hosted_status(status, "STATUS_CREATING")
    assert status["conditions"] == [
        {
            "type": "WaitingForCapacity",
            "status": "True",
            "lastUpdateTime": "2025-11-24T16:00:00.500Z",
            "reason": "WaitingForCapacity",
            "message": "no H100-8x free",
            "zone": "",
        }
    ]
    assert status["readyReplicas"] == 0  # Tide's own status fields stay


def test_create_capacity_claim_example_is_accepted_and_echoed(client: TestClient) -> None:
    created = client.post(f"{BASE}/capacityclaims", json=CREATE_CLAIM)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"capacityClaim"}
    claim = body["capacityClaim"]
    assert claim["spec"] == {**CREATE_CLAIM, "resources": {**CREATE_CLAIM["resources"], "instanceId": "H100-8x"}}
    assert_hosted_status(claim["status"], "STATUS_READY")
    assert (claim["status"]["allocatedInstances"], claim["status"]["pendingInstances"]) == (2, 0)
    assert client.get(f"{BASE}/capacityclaims").json() == {"capacityClaims": [claim]}
