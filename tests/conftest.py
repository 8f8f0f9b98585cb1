"""Test tiers, by folder: the fast tier is pure code and in-process tests; the process tiers start real
servers and engines and can each be run alone (`pytest -m e2e`, `-m scaleout`, `-m ray`, `-m vllm`,
`-m engines`, `-m services`). `./scripts/test.sh` runs every tier; `./scripts/test-fast.sh` only the fast one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailable, postgres_server, skip_or_fail

# Folders whose tests start engine processes, `tide up`, clusters or vLLM: each is a tier of its own.
PROCESS_TIERS = ("e2e", "scaleout", "ray", "vllm", "engines")
# Fixtures that start a real server (Postgres, an S3-protocol server): the tests that use one are the
# `services` tier. So are the files that kill and start processes of their own.
SERVICE_FIXTURES = frozenset({"postgres", "seaweed"})
SERVICE_FILES = frozenset(
    {
        "store/test_lease_takeover.py",
        "model/test_tiny_model.py",
        "api/test_schemathesis.py",
        "gateway/test_schemathesis.py",
    }
)
# Fixtures that build the tiny model to start engine processes with: outside tests/engines, the tests that
# use one are the `engines` tier too (the backends' warm pool test starts real engine processes).
ENGINE_FIXTURES = frozenset({"tiny_model_dir"})
_TESTS_ROOT = Path(__file__).parent


def _needs_a_service(item: pytest.Item, path: str) -> bool:
    if path in SERVICE_FILES or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    # `db_url[postgres]`: the store fixtures reach Postgres through getfixturevalue, by parameter.
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.params.values()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(_TESTS_ROOT).parts
        tier = parts[0] if parts and parts[0] in PROCESS_TIERS else None
        if tier is None and ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            tier = "engines"
        if tier is None and _needs_a_service(item, "/".join(parts)):
            tier = "services"
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
            item.add_marker(pytest.mark.process)
        else:
            item.add_marker(pytest.mark.fast)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway Postgres cluster for the session (tests/support/postgres.py); each test that needs a
    database takes a fresh one from it (`create_database`). Skipped, or failed in CI, without the binaries."""
    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as exc:
        skip_or_fail(exc)
