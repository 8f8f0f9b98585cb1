from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.seaweed import SeaweedServer, seaweed_server
from tests.weights.helpers import SETTINGS
from tide.weights import StorageConfig, WeightsCache


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    with seaweed_server(timeout_s=60) as server:
        yield server


@pytest.fixture
def s3(seaweed: SeaweedServer) -> Any:
    return seaweed.client()


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage(seaweed: SeaweedServer, tmp_path: Path) -> StorageConfig:
    """S3 configured and an (empty) local bucket root, as a node would have both."""
    root = tmp_path / "buckets"
    root.mkdir()
    return StorageConfig(
        local_root=root,
        s3_endpoint_url=seaweed.endpoint_url,
        s3_region=seaweed.region,
        s3_access_key_id=seaweed.access_key,
        s3_secret_access_key=seaweed.secret_key,
    )


@pytest.fixture
def cache(tmp_path: Path) -> WeightsCache:
    return WeightsCache(tmp_path / "cache", budget_bytes=None, settings=SETTINGS)
