"""Fixtures: every store test runs on SQLite and on a real Postgres started for the session (the `postgres`
fixture, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer
from tide.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tide.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()  # a fresh database per test: no state leaks between tests


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()
