"""The dashboard's pages as the management API serves them: where they live, that they need nothing from
outside the package, and that a missing chart library leaves them working."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import tide.api.dashboard as dashboard
from tide.api.app import ApiContext, create_app
from tide.api.parameters import parameters_json
from tide.backends.logfiles import LogText
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "cpu", 8, 0, 0),))


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    ctx = ApiContext(
        store=store,
        catalog=lambda: CATALOG,
        token="test-token-123456",
        wake_controller=lambda: None,
        logs=lambda deployment_id, tail, after: {"r1": LogText("hello\n", 6)},
        parameters=lambda: parameters_json(CATALOG),
    )
    yield TestClient(create_app(ctx), follow_redirects=False)
    store.close()


def test_root_and_ui_redirect_to_the_dashboard_which_asks_for_the_token(client: TestClient) -> None:
    for path in ("/", "/ui"):
        response = client.get(path)
        assert response.status_code == 307
        assert response.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200
    assert 'id="login-form"' in page.text
    # The pages are public; the data behind them is not.
    assert client.get("/v1alpha1/inference/deployments").status_code == 401


def test_every_asset_comes_from_the_package(client: TestClient) -> None:
    page = client.get("/ui/").text
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page)
    assert set(assets) >= {"app.js", "app.css", "chart.js", "chart.css"}
    for asset in assets:
        if asset.startswith("data:"):
            continue
        assert "//" not in asset, f"{asset} is not served by the API"
        assert client.get(f"/ui/{asset}").status_code == 200, asset
    script = client.get("/ui/app.js").text
    assert not re.search(r"https?://", script), "app.js must not load anything from outside"


def test_without_the_vendored_chart_the_pages_get_a_harmless_stub(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dashboard, "CHART_JS", tmp_path / "missing.js")
    response = client.get("/ui/chart.js")
    assert response.status_code == 200
    assert response.content == dashboard.MISSING_CHART
    assert "uPlot" not in response.text.split("*/", 1)[1]


def test_the_dashboard_is_not_part_of_the_api_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]


def test_the_pages_read_the_fields_the_api_answers_with(client: TestClient) -> None:
    """Without a browser the e2e test skips: this keeps app.js and the hosted response shape in step."""
    auth = {"authorization": "Bearer test-token-123456"}
    spec = {
        "name": "tiny-chat",
        "model": {"name": "chat", "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
    }
    assert client.post("/v1alpha1/inference/deployments", json=spec, headers=auth).status_code == 201
    page = client.get("/v1alpha1/inference/deployments?pageSize=1", headers=auth).json()
    (item,) = page["deployments"]
    assert item["spec"]["id"] == "tiny-chat"
    assert item["spec"]["model"]["name"] == "chat"
    assert item["spec"]["gatewayIds"] == ["default"]
    assert item["spec"]["traffic"]["routing"]
    assert item["status"]["status"].startswith("STATUS_")
    gateways = client.get("/v1alpha1/inference/gateways", headers=auth).json()["gateways"]
    assert [g["spec"]["id"] for g in gateways] == ["default"]
    script = client.get("/ui/app.js").text
    for read in (
        '"deployments"',
        '"capacityClaims"',
        "nextPageToken",
        "pageToken=",
        "answer.deployment",
        "spec.id",
        "status.status",
        "spec.model",
        "gatewayIds",
        "traffic",
        "routing",
        "gateways.gateways",
        "parkedReplicas",
        "prefixCacheHitRate",
        "lastUpdateTime",
    ):
        assert read in script, f"app.js no longer reads {read}"
