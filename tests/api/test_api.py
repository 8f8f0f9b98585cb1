"""The management API over a real SQLite store: auth, CRUD, errors naming fields, PATCH semantics."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tide.api.app import ApiContext, create_app
from tide.api.parameters import parameters_json
from tide.backends.logfiles import LogText
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

TOKEN = "test-token-123456"
CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0),)
)
BASE = "/v1alpha1/inference"


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[TestClient, list[int]]]:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    wakes: list[int] = []
    ctx = ApiContext(
        store=store,
        catalog=lambda: CATALOG,
        token=TOKEN,
        wake_controller=lambda: wakes.append(1),
        logs=lambda deployment_id, tail, after: {"r1": LogText("hello\n", 6)},
        parameters=lambda: parameters_json(CATALOG),
    )
    client = TestClient(create_app(ctx), headers={"authorization": f"Bearer {TOKEN}"})
    yield client, wakes
    store.close()


def spec(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "tiny-chat",
        "model": {"name": "tiny-model", "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
    }
    raw.update(overrides)
    return raw


def test_old_shape_is_accepted_with_a_deprecation_notice(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    old = {"name": "tiny-chat", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}
    created = client.post(f"{BASE}/deployments", json=old)
    assert created.status_code == 201, created.text
    assert created.headers["deprecation"] == "true"
    assert "model: {name, bucket, path}" in created.headers["warning"]
    assert "weights.bucket" in created.headers["warning"]
    stored = client.get(f"{BASE}/deployments/tiny-chat").json()["deployment"]["spec"]
    assert stored["model"] == {"name": "tiny-chat", "bucket": "models", "path": "tiny"}
    assert "weights" not in stored
    new_shape = spec(model={"name": "tiny-chat", "bucket": "models", "path": "tiny"})
    updated = client.patch(f"{BASE}/deployments/tiny-chat", json=new_shape)
    assert updated.status_code == 200 and "deprecation" not in updated.headers


def test_every_route_needs_the_token(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    for method, path in [
        ("GET", "/deployments"),
        ("POST", "/deployments"),
        ("GET", "/deployments/parameters"),
        ("GET", "/deployments/x"),
        ("PATCH", "/deployments/x"),
        ("DELETE", "/deployments/x"),
    ]:
        response = client.request(method, BASE + path, headers={"authorization": ""})
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        wrong = client.request(method, BASE + path, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_create_read_list_delete(api: tuple[TestClient, list[int]]) -> None:
    client, wakes = api
    created = client.post(f"{BASE}/deployments", json=spec())
    assert created.status_code == 201
    body = created.json()["deployment"]
    assert body["spec"]["id"] == "tiny-chat"
    assert body["spec"]["traffic"]["weight"] == 100  # defaults filled in
    assert body["status"]["status"] == "STATUS_CREATING"
    assert wakes, "the controller must be woken after the write"
    assert client.get(f"{BASE}/deployments/tiny-chat").json()["deployment"]["spec"]["name"] == "tiny-chat"
    assert [d["spec"]["id"] for d in client.get(f"{BASE}/deployments").json()["deployments"]] == ["tiny-chat"]
    deleted = client.delete(f"{BASE}/deployments/tiny-chat")
    assert deleted.status_code == 200
    assert deleted.json()["deployment"]["status"]["status"] == "STATUS_DELETING"
    listed = client.get(f"{BASE}/deployments").json()["deployments"]
    assert listed[0]["spec"]["id"] == "tiny-chat"  # until drained


def test_same_name_gets_a_new_id_and_name_lookup_becomes_ambiguous(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    client.post(f"{BASE}/deployments", json=spec())
    second = client.post(f"{BASE}/deployments", json=spec()).json()["deployment"]["spec"]
    assert second["id"].startswith("tiny-chat-") and second["id"] != "tiny-chat"
    canary = client.post(f"{BASE}/deployments", json={**spec(), "id": "tiny-canary"})
    assert canary.json()["deployment"]["spec"]["id"] == "tiny-canary"
    taken = client.post(f"{BASE}/deployments", json={**spec(), "id": "tiny-canary"})
    assert taken.status_code == 409
    assert client.get(f"{BASE}/deployments/tiny-canary").status_code == 200


def test_patch_takes_the_whole_spec(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    client.post(f"{BASE}/deployments", json=spec(traffic={"weight": 7}, autoscaling={"max": 3}))
    patched = client.patch(f"{BASE}/deployments/tiny-chat", json=spec())
    assert patched.status_code == 200
    body = patched.json()["deployment"]
    assert body["spec"]["traffic"]["weight"] == 100
    assert body["spec"]["autoscaling"]["max"] == 1
    assert body["status"]["generation"] == 2


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (spec(name="abc"), "name"),
        (spec(model={"name": "tiny-model", "bucket": "models"}), "model.path"),
        (spec(model={"name": "abc", "bucket": "models", "path": "tiny"}), "model.name"),
        (spec(gatewayIds=[]), "gatewayIds"),
        (spec(runtime={"engine": "nope"}), "runtime.engine"),
        (
            spec(runtime={"engine": "builtin", "engineConfig": {"tensor-parallel-size": "2"}}),
            "runtime.engineConfig.tensor-parallel-size",
        ),
        (spec(resources={"gpuCount": 3}), "resources.gpuCount"),
        (spec(resources={"instanceType": "h100"}), "resources.instanceType"),
        (spec(autoscaling={"min": 2, "max": 1}), "autoscaling.max"),
        (spec(autoscaling={"concurrency": 0}), "autoscaling.concurrency"),
        (spec(autoscaling={"priority": 2000}), "autoscaling.priority"),
        (spec(autoscaling={"capacityClasses": ["SPOT"]}), "autoscaling.capacityClasses"),
        (spec(traffic={"weight": 5000}), "traffic.weight"),
        (spec(autoscaling={"window": "soon"}), "autoscaling.window"),
    ],
)
def test_bad_specs_get_400_naming_the_field(api: tuple[TestClient, list[int]], raw: dict[str, Any], field: str) -> None:
    client, _ = api
    response = client.post(f"{BASE}/deployments", json=raw)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    assert error["code"] == "INVALID_ARGUMENT"
    assert field.split(".")[-1].split("[")[0] in error["message"]


def test_not_json_is_a_400(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    response = client.post(f"{BASE}/deployments", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_unknown_deployment_is_404(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    response = client.get(f"{BASE}/deployments/nope-nope")
    assert response.status_code == 404
    assert "nope-nope" in response.json()["error"]["message"]


def test_parameters_list_engines_and_instance_types(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    params = client.get(f"{BASE}/deployments/parameters").json()
    assert params["resourceParameters"]["instanceTypes"][0]["id"] == "cpu-local"
    engines = {e["engine"]: e for e in params["runtimeParameters"]["engines"]}
    assert "max-model-len" in engines["vllm"]["runtimeConfigOptions"]
    assert engines["builtin"]["versions"] == ["0.1.0"]
    assert params["zoneInstanceTypes"] == {"local": ["cpu-local"]}


def test_openapi_is_served(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    doc = client.get("/openapi.json").json()
    assert f"{BASE}/deployments" in doc["paths"]


def test_deeply_nested_json_is_a_400_not_a_500(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    assert client.post(BASE + "/deployments", json=spec()).status_code == 201
    for (method, path), depth in itertools.product(
        [("POST", "/deployments"), ("PATCH", "/deployments/tiny-chat")], (100, 5000)
    ):
        body = '{"name": ' + "[" * depth + "]" * depth + "}"
        response = client.request(method, BASE + path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "INVALID_ARGUMENT" and "nested deeper" in error["message"]


def test_patch_cannot_rename_and_says_how(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    client.post(f"{BASE}/deployments", json=spec())
    renamed = spec(model={"name": "tiny-model-2", "bucket": "models", "path": "tiny"})
    response = client.patch(f"{BASE}/deployments/tiny-chat", json=renamed)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "model.name" and "create a deployment with model.name 'tiny-model-2'" in error["message"]
    assert client.get(f"{BASE}/deployments/tiny-chat").json()["deployment"]["status"]["generation"] == 1


def test_a_retried_create_with_an_idempotency_key_gets_the_first_result(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    headers = {"idempotency-key": "create-tiny-7f3a"}
    first = client.post(f"{BASE}/deployments", json=spec(), headers=headers)
    again = client.post(f"{BASE}/deployments", json=spec(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["deployment"]["spec"]["id"] == first.json()["deployment"]["spec"]["id"] == "tiny-chat"
    assert again.headers["idempotent-replayed"] == "true"
    assert [d["spec"]["id"] for d in client.get(f"{BASE}/deployments").json()["deployments"]] == ["tiny-chat"]
    # The same key for a different deployment is a client bug, refused naming the header.
    other = client.post(f"{BASE}/deployments", json=spec(name="other"), headers=headers)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    # Without a key, a second create is a second deployment (a suffixed id), as before.
    assert client.post(f"{BASE}/deployments", json=spec()).json()["deployment"]["spec"]["id"] != "tiny-chat"
