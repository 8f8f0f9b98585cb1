"""A local directory as a bucket: resolution order, copying into the cache, change detection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.weights.helpers import model_files, put_model, tree
from tide.weights import MISSING_FILE, PATH_NOT_FOUND, StorageConfig, WeightsCache, WeightsError, WeightsSource
from tide.weights.file_bucket import FileBucket

pytestmark = pytest.mark.timeout(60)


def write_tree(base: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)


def test_local_bucket_is_copied_not_linked(tmp_path: Path, cache: WeightsCache) -> None:
    files = model_files()
    write_tree(tmp_path / "buckets" / "local" / "models" / "x", files)
    storage = StorageConfig(local_root=tmp_path / "buckets")
    with cache.ensure_sync(storage, WeightsSource("local", "models/x")) as lease:
        assert tree(lease.path) == files
        src = tmp_path / "buckets/local/models/x/model.safetensors"
        assert os.stat(lease.path / "model.safetensors").st_ino != src.stat().st_ino
        # Editing the bucket afterwards does not alter the cached copy.
        src.write_bytes(b"edited")
        assert (lease.path / "model.safetensors").read_bytes() == files["model.safetensors"]
    with cache.ensure_sync(storage, WeightsSource("local", "models/x")) as lease2:
        assert lease2.path != lease.path and (lease2.path / "model.safetensors").read_bytes() == b"edited"


def test_local_bucket_wins_over_s3(s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache) -> None:
    put_model(s3, bucket, "m", {"config.json": b'"from s3"'})
    assert storage.local_root is not None
    write_tree(storage.local_root / bucket / "m", {"config.json": b'"from disk"'})
    with cache.ensure_sync(storage, WeightsSource(bucket, "m")) as lease:
        assert (lease.path / "config.json").read_bytes() == b'"from disk"'
    assert isinstance(storage.resolve(bucket), FileBucket)


def test_local_missing_path_and_config(tmp_path: Path, cache: WeightsCache) -> None:
    write_tree(tmp_path / "local" / "models" / "noconfig", {"w.bin": b"1"})
    storage = StorageConfig(local_root=tmp_path)
    with pytest.raises(WeightsError) as info:
        cache.ensure_sync(storage, WeightsSource("local", "models/absent"))
    assert info.value.code == PATH_NOT_FOUND and str(tmp_path / "local/models/absent") in info.value.message
    with pytest.raises(WeightsError) as info:
        cache.ensure_sync(storage, WeightsSource("local", "models/noconfig"))
    assert info.value.code == MISSING_FILE
    assert f"{(tmp_path / 'local/models/noconfig').as_uri()} has no config.json" in info.value.message


def test_from_env_reads_tide_and_aws_variables(tmp_path: Path) -> None:
    env = {
        "TIDE_BUCKETS_DIR": str(tmp_path),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "TIDE_S3_ENDPOINT_URL": "http://127.0.0.1:2",
        "AWS_ACCESS_KEY_ID": "ak",
        "AWS_SECRET_ACCESS_KEY": "sk",
        "AWS_REGION": "eu-west-1",
    }
    config = StorageConfig.from_env(env)
    assert config == StorageConfig(tmp_path, "http://127.0.0.1:2", "eu-west-1", "ak", "sk")
    assert StorageConfig.from_env(env, local_root=tmp_path / "other").local_root == tmp_path / "other"
    assert not StorageConfig.from_env({}).s3_configured
