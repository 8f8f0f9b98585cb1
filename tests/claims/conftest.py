"""Fixtures: the store one from tests/store (SQLite and a real Postgres; the `postgres` server is in
tests/conftest.py), and the claims API over a real SQLite store with a declared inventory, a wake counter
and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.store.conftest import store  # noqa: F401  (RunLog/ClaimStore run on both)
from tests.support.postgres import PostgresServer
from tide.api.app import ApiContext, create_app
from tide.api.claims import ClaimsContext, claims_router
from tide.api.parameters import parameters_json
from tide.scheduling import Inventory, declared_inventory
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store
from tide.store.claims import RunLog, capacity_claims, replica_runs
from tide.store.engine import write_transaction

TOKEN = "test-token-123456"
BASE = "/v1alpha1/inference"
ZONE_A = "us-east-04a"
ZONE_B = "us-east-04b"
CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0),)
)
# 04a: three reserved H100-8x, the last still joining, and one on-demand L40-4x; 04b: two reserved H100-8x.
DECLARED: dict[str, Any] = {
    "instanceTypes": [
        {"id": "H100-8x", "gpuModel": "H100", "gpus": 8, "memoryGib": 1024, "cpus": 128},
        {"id": "L40-4x", "gpuModel": "L40", "gpus": 4},
    ],
    "instances": [
        {"type": "h100-8x", "zone": ZONE_A, "count": 3, "class": "reserved", "joining": 1},
        {"type": "l40-4x", "zone": ZONE_A, "count": 1},
        {"type": "h100-8x", "zone": ZONE_B, "count": 2, "class": "reserved"},
    ],
}


@pytest.fixture(scope="session")
def claims_postgres_url(postgres: PostgresServer) -> str:
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """As tests/store's, but one Postgres database for the session, emptied before each test (creating a
    database per test costs more than these tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tide.db'}"
    url: str = request.getfixturevalue("claims_postgres_url")
    emptied = Store(url)
    with write_transaction(emptied.engine) as conn:
        conn.execute(capacity_claims.delete())
        conn.execute(replica_runs.delete())
    emptied.close()
    return url


@dataclass
class Clock:
    now: float = 1_764_000_000.0  # 2025-11-24T16:00:00Z

    def __call__(self) -> float:
        return self.now


@dataclass
class ClaimsApi:
    client: TestClient
    store: Store
    runs: RunLog
    clock: Clock
    wakes: list[int] = field(default_factory=list)
    inventory: list[Inventory] = field(default_factory=list)


def app_auth(app: FastAPI) -> list[params.Depends]:
    """The app's own bearer-token dependency, as its deployment routes carry it (`require_token` is local
    to `create_app`)."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.dependencies:
            return list(route.dependencies)
    raise AssertionError("create_app has no route guarded by a dependency")


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[ClaimsApi]:
    db = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    clock = Clock()
    wakes: list[int] = []
    app = create_app(
        ApiContext(
            store=db,
            catalog=lambda: CATALOG,
            token=TOKEN,
            wake_controller=lambda: wakes.append(1),
            logs=lambda deployment_id, tail, after: {},
            parameters=lambda: parameters_json(CATALOG),
            clock=clock,
        )
    )
    inventory = [declared_inventory(DECLARED)]
    ctx = ClaimsContext(store=db, inventory=lambda: inventory[0], wake_controller=lambda: wakes.append(1), clock=clock)
    app.include_router(claims_router(ctx, app_auth(app)))
    client = TestClient(app, headers={"authorization": f"Bearer {TOKEN}"})
    yield ClaimsApi(client, db, RunLog(db), clock, wakes, inventory)
    db.close()
