"""`/gateways` over a real SQLite store: CRUD, parameters, endpoints, 400s naming the field, and the
rules tying deployments to gateways (a deployment names existing gateways; a used gateway stays)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tide.api.app import ApiContext, create_app
from tide.api.parameters import parameters_json
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

TOKEN = "test-token-123456"
CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0),)
)
BASE = "/v1alpha1/inference"


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    ctx = ApiContext(
        store=store,
        catalog=lambda: CATALOG,
        token=TOKEN,
        wake_controller=lambda: None,
        logs=lambda deployment_id, tail, after: {},
        parameters=lambda: parameters_json(CATALOG),
        gateway_url="http://127.0.0.1:8080",
    )
    yield TestClient(create_app(ctx), headers={"authorization": f"Bearer {TOKEN}"})
    store.close()


def deployment(name: str, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": name,
        "model": {"name": "tiny-model", "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
    }
    raw.update(overrides)
    return raw


def test_the_default_gateway_exists_and_answers_at_the_plain_address(client: TestClient) -> None:
    listed = client.get(f"{BASE}/gateways").json()["gateways"]
    assert [g["spec"]["id"] for g in listed] == ["default"]
    default = listed[0]
    assert default["spec"]["coreWeaveAuth"] == {} and default["spec"]["bodyBasedRouting"] == {
        "apiType": "API_TYPE_OPENAI"
    }
    assert default["status"]["status"] == "STATUS_READY"
    assert default["status"]["endpoints"] == ["http://127.0.0.1:8080/v1", "http://default.localhost:8080/v1"]
    refused = client.delete(f"{BASE}/gateways/default")
    assert refused.status_code == 409 and "update it instead" in refused.json()["error"]["message"]


def test_create_get_update_delete(client: TestClient) -> None:
    created = client.post(
        f"{BASE}/gateways",
        json={
            "name": "team-a",
            "zones": ["local"],
            "apiKeyAuth": {},
            "pathBasedRouting": {},
            "endpointConfiguration": {"additionalDns": ["a.example.com"]},
        },
    )
    assert created.status_code == 201, created.text
    gateway = created.json()["gateway"]
    assert gateway["spec"]["id"] == "team-a"
    assert gateway["status"]["endpoints"] == ["http://team-a.localhost:8080/v1", "http://a.example.com:8080/v1"]
    assert client.get(f"{BASE}/gateways/team-a").json() == {"gateway": gateway}
    # PATCH takes the whole spec: omitted zones and host names go back to none.
    patched = client.patch(
        f"{BASE}/gateways/team-a",
        json={"name": "team-a", "coreWeaveAuth": {}, "headerBasedRouting": {"headerName": "x-m"}},
    )
    assert patched.status_code == 200, patched.text
    spec = patched.json()["gateway"]["spec"]
    assert (spec["zones"], spec["headerBasedRouting"], "apiKeyAuth" in spec) == ([], {"headerName": "x-m"}, False)
    assert client.post(f"{BASE}/gateways", json={**spec, "id": "team-a"}).status_code == 409
    assert client.delete(f"{BASE}/gateways/team-a").status_code == 200
    assert client.get(f"{BASE}/gateways/team-a").status_code == 404


def test_parameters_list_the_zones(client: TestClient) -> None:
    assert client.get(f"{BASE}/gateways/parameters").json() == {"zones": ["local"]}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "both", "coreWeaveAuth": {}, "apiKeyAuth": {}, "pathBasedRouting": {}}, "apiKeyAuth"),
        ({"name": "none", "pathBasedRouting": {}}, "coreWeaveAuth"),
        ({"name": "twor", "coreWeaveAuth": {}, "pathBasedRouting": {}, "bodyBasedRouting": {}}, "pathBasedRouting"),
        ({"name": "zone", "coreWeaveAuth": {}, "pathBasedRouting": {}, "zones": ["mars"]}, "zones[0]"),
    ],
)
def test_bad_gateways_get_400_naming_the_field(client: TestClient, raw: dict[str, Any], field: str) -> None:
    response = client.post(f"{BASE}/gateways", json=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert client.get(f"{BASE}/gateways").json()["gateways"][-1]["spec"]["id"] == "default"  # nothing written


def test_deployments_name_existing_gateways_and_keep_them(client: TestClient) -> None:
    missing = client.post(f"{BASE}/deployments", json=deployment("tiny-a", gatewayIds=["nowhere"]))
    assert missing.status_code == 400
    assert missing.json()["error"]["field"] == "gatewayIds[0]"
    assert "nowhere" in missing.json()["error"]["message"]
    client.post(f"{BASE}/gateways", json={"name": "edge", "coreWeaveAuth": {}, "pathBasedRouting": {}})
    created = client.post(f"{BASE}/deployments", json=deployment("tiny-a", gatewayIds=["default", "edge"]))
    assert created.status_code == 201, created.text
    assert created.json()["deployment"]["spec"]["gatewayIds"] == ["default", "edge"]
    in_use = client.delete(f"{BASE}/gateways/edge")
    assert in_use.status_code == 409 and "tiny-a" in in_use.json()["error"]["message"]


def test_api_keys_are_shown_once_stored_hashed_and_revocable(client: TestClient, tmp_path: Path) -> None:
    client.post(f"{BASE}/gateways", json={"name": "team", "apiKeyAuth": {}, "bodyBasedRouting": {}})
    created = client.post(f"{BASE}/gateways/team/keys", json={"name": "ci"})
    assert created.status_code == 201, created.text
    body = created.json()
    key, record = body["key"], body["apiKey"]
    assert key.startswith("tide_") and len(key) > 40
    assert record["gatewayId"] == "team" and record["name"] == "ci" and key.startswith(record["prefix"])
    listed = client.get(f"{BASE}/gateways/team/keys").json()["apiKeys"]
    assert listed == [record]  # no key in the list
    assert key not in (tmp_path / "tide.db").read_bytes().decode("latin-1")  # only its hash is stored
    assert client.get(f"{BASE}/gateways/nope/keys").status_code == 404
    assert client.delete(f"{BASE}/gateways/default/keys/{record['id']}").status_code == 404  # not default's
    assert client.delete(f"{BASE}/gateways/team/keys/{record['id']}").status_code == 200
    assert client.get(f"{BASE}/gateways/team/keys").json()["apiKeys"] == []
    limited = client.post(f"{BASE}/gateways/team/keys", json={"requestsPerMinute": 30}).json()["apiKey"]
    assert limited["requestsPerMinute"] == 30
    bad = client.post(f"{BASE}/gateways/team/keys", json={"requestsPerMinute": 0})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "requestsPerMinute"
    both = client.post(f"{BASE}/gateways/team/keys", json={"requestsPerMinute": 60, "tokensPerMinute": 5000})
    assert (both.json()["apiKey"]["requestsPerMinute"], both.json()["apiKey"]["tokensPerMinute"]) == (60, 5000)
    bad = client.post(f"{BASE}/gateways/team/keys", json={"tokensPerMinute": "many"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "tokensPerMinute"
    # A coreWeaveAuth gateway takes the management token; a key for it would open nothing.
    refused = client.post(f"{BASE}/gateways/default/keys", json={"name": "x"})
    assert refused.status_code == 400 and "coreWeaveAuth" in refused.json()["error"]["message"]


def test_gateway_zones_bound_where_their_deployments_run(tmp_path: Path) -> None:
    catalog = default_catalog(
        builtin_version="0.1.0",
        instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0, zones=("east", "west")),),
    )
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    ctx = ApiContext(
        store=store,
        catalog=lambda: catalog,
        token=TOKEN,
        wake_controller=lambda: None,
        logs=lambda deployment_id, tail, after: {},
        parameters=lambda: parameters_json(catalog),
    )
    with TestClient(create_app(ctx), headers={"authorization": f"Bearer {TOKEN}"}) as client:
        for name, zones in (("east", ["east"]), ("west", ["west"]), ("both", ["west", "east"])):
            gateway = {"name": name, "zones": zones, "coreWeaveAuth": {}, "bodyBasedRouting": {}}
            assert client.post(f"{BASE}/gateways", json=gateway).status_code == 201
        nowhere = client.post(f"{BASE}/deployments", json=deployment("tiny-a", gatewayIds=["east", "west"]))
        assert nowhere.status_code == 400, nowhere.text
        assert (
            nowhere.json()["error"]["field"] == "gatewayIds" and "share no zone" in nowhere.json()["error"]["message"]
        )
        ok = client.post(f"{BASE}/deployments", json=deployment("tiny-a", gatewayIds=["east", "both"]))
        assert ok.status_code == 201, ok.text
        # Narrowing `both` to west would leave tiny-a (on east too) nowhere to run.
        moved = client.patch(
            f"{BASE}/gateways/both",
            json={"name": "both", "zones": ["west"], "coreWeaveAuth": {}, "bodyBasedRouting": {}},
        )
        assert moved.status_code == 400 and moved.json()["error"]["field"] == "zones"
        assert "tiny-a" in moved.json()["error"]["message"]
    store.close()
