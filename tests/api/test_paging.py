"""List routes page (pageSize/pageToken), and a create costs the same store work at any number of deployments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

import tide.store.database
from tide.api.app import ApiContext, create_app
from tide.api.paging import MAX_PAGE_SIZE
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
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    yield s
    s.close()


@pytest.fixture()
def client(store: Store) -> TestClient:
    ctx = ApiContext(
        store=store,
        catalog=lambda: CATALOG,
        token=TOKEN,
        wake_controller=lambda: None,
        logs=lambda deployment_id, tail, after: {"r1": LogText("", 0)},
        parameters=lambda: parameters_json(CATALOG),
    )
    return TestClient(create_app(ctx), headers={"authorization": f"Bearer {TOKEN}"})


def spec(name: str) -> dict[str, Any]:
    return {"name": name, "model": {"name": name, "bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}


def seed(store: Store, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        store.create_deployment(f"d{i:04d}", spec(f"d{i:04d}"), now=float(i))


def test_the_list_pages_through_every_deployment_once(client: TestClient, store: Store) -> None:
    seed(store, 12)
    ids: list[str] = []
    params: dict[str, Any] = {"pageSize": 5}
    pages = 0
    while True:
        body = client.get(f"{BASE}/deployments", params=params).json()
        assert len(body["deployments"]) <= 5
        ids += [item["spec"]["id"] for item in body["deployments"]]
        pages += 1
        if "nextPageToken" not in body:
            break
        params = {"pageSize": 5, "pageToken": body["nextPageToken"]}
    assert pages == 3 and ids == [f"d{i:04d}" for i in range(12)]


def test_page_size_defaults_and_is_capped(client: TestClient, store: Store) -> None:
    seed(store, 101)
    first = client.get(f"{BASE}/deployments").json()
    assert len(first["deployments"]) == 100 and first["nextPageToken"]
    everything = client.get(f"{BASE}/deployments", params={"pageSize": MAX_PAGE_SIZE + 5}).json()
    assert len(everything["deployments"]) == 101 and "nextPageToken" not in everything


@pytest.mark.parametrize(
    ("params", "field"), [({"pageToken": "garbage!"}, "pageToken"), ({"pageSize": -1}, "pageSize")]
)
def test_bad_paging_parameters_name_the_field(client: TestClient, params: dict[str, Any], field: str) -> None:
    response = client.get(f"{BASE}/deployments", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


class StoreWork:
    """What the store does for a request: statements run, rows decoded, and SQLite virtual-machine steps
    (a scan steps once or more per row it passes; a primary-key or index read does not grow with the table)."""

    STEP = 1  # VM instructions per progress callback

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements = self.decoded = self.steps = 0
        real_record = tide.store.database._record

        def count_record(row: Any) -> Any:
            self.decoded += 1
            return real_record(row)

        def count_step() -> int:
            self.steps += self.STEP
            return 0  # 0: go on

        def count_statement(conn: Any, *_args: Any) -> None:
            self.statements += 1
            conn.connection.dbapi_connection.set_progress_handler(count_step, self.STEP)

        event.listen(store.engine, "before_cursor_execute", count_statement)
        monkeypatch.setattr(tide.store.database, "_record", count_record)

    def of(self, request: Any) -> tuple[int, int, int]:
        self.statements = self.decoded = self.steps = 0
        request()
        return self.statements, self.decoded, self.steps


def test_store_work_per_create_does_not_grow_with_the_deployments(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statements run, deployment rows decoded and SQLite steps of one create (with and without an id): the
    same at 10 as at 300."""
    work = StoreWork(store, monkeypatch)

    def creates(tag: str) -> None:
        assert client.post(f"{BASE}/deployments", json=spec(f"new-{tag}")).status_code == 201
        assert client.post(f"{BASE}/deployments", json=spec(f"new-{tag}")).status_code == 201  # name taken: suffixed
        assert client.post(f"{BASE}/deployments", json={**spec("with-id"), "id": f"id-{tag}"}).status_code == 201

    seed(store, 10)
    small = work.of(lambda: creates("small"))
    seed(store, 290, start=10)
    large = work.of(lambda: creates("large"))
    assert large == small  # no scan: a scan steps once or more per row
    assert small[1] <= 3  # each create decodes only the row it wrote


def test_store_work_per_get_does_not_grow_with_the_deployments(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A get by id (and by name, which tries the id first) runs the same statements, decodes one row and
    steps the same at 10 deployments as at 1,000: no scan, no per-deployment work (issue 15)."""
    work = StoreWork(store, monkeypatch)

    def get(key: str) -> None:
        response = client.get(f"{BASE}/deployments/{key}")
        assert response.status_code == 200 and response.json()["deployment"]["spec"]["id"] == "d0003"

    store.create_deployment("d0003", spec("named-three"), now=-1.0)
    seed(store, 10, start=4)
    small = work.of(lambda: get("d0003")), work.of(lambda: get("named-three"))
    seed(store, 990, start=14)
    large = work.of(lambda: get("d0003")), work.of(lambda: get("named-three"))
    assert large == small
    assert small[0][1] == small[1][1] == 1  # the one row asked for
