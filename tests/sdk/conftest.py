"""The SDK's tests run against a real management API on a loopback port (tests/support/api_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_server import ApiServer, api_server


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[ApiServer]:
    with api_server(tmp_path) as server:
        yield server


def spec(name: str = "tiny-chat", **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": name,
        "model": {"name": f"{name}-model", "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
    }
    raw.update(overrides)
    return raw
