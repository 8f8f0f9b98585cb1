"""Failures a user can act on: each has a code, names the object, and leaves nothing half-written."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.weights.helpers import SETTINGS, model_files, put_model
from tide.weights import (
    ACCESS_DENIED,
    BUCKET_NOT_FOUND,
    DISK_FULL,
    MISSING_FILE,
    OBJECT_CHANGED,
    PATH_NOT_FOUND,
    DownloadProgress,
    StorageConfig,
    WeightsCache,
    WeightsError,
    WeightsSource,
)

pytestmark = pytest.mark.timeout(60)


def assert_nothing_cached(cache: WeightsCache) -> None:
    assert cache.entries() == []
    assert list((cache.root / "entries").iterdir()) == []


def fail(cache: WeightsCache, storage: StorageConfig, source: WeightsSource) -> WeightsError:
    with pytest.raises(WeightsError) as info:
        cache.ensure_sync(storage, source)
    return info.value


def test_missing_bucket_names_both_places(storage: StorageConfig, cache: WeightsCache) -> None:
    err = fail(cache, storage, WeightsSource("no-such-bucket", "models/x"))
    assert err.code == BUCKET_NOT_FOUND
    assert "no-such-bucket" in err.message
    assert storage.local_root is not None and storage.s3_endpoint_url is not None
    assert str(storage.local_root / "no-such-bucket") in err.message and storage.s3_endpoint_url in err.message
    assert_nothing_cached(cache)


def test_missing_bucket_without_s3_names_local_dir_and_says_s3_is_off(tmp_path: Path, cache: WeightsCache) -> None:
    storage = StorageConfig(local_root=tmp_path)
    err = fail(cache, storage, WeightsSource("nope", "x"))
    assert err.code == BUCKET_NOT_FOUND and str(tmp_path / "nope") in err.message and "not configured" in err.message


def test_missing_path(s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache) -> None:
    put_model(s3, bucket, "models/real", {"config.json": b"{}"})
    err = fail(cache, storage, WeightsSource(bucket, "models/typo"))
    assert err.code == PATH_NOT_FOUND and err.object_ref == f"s3://{bucket}/models/typo/"
    assert f"s3://{bucket}/models/typo" in err.message


@pytest.mark.parametrize("keys", [("wrong", "wrong"), ("test", "wrong-secret")])
def test_wrong_credentials_are_access_denied(
    bucket: str, storage: StorageConfig, cache: WeightsCache, keys: tuple[str, str]
) -> None:
    bad = StorageConfig(storage.local_root, storage.s3_endpoint_url, storage.s3_region, *keys)
    err = fail(cache, bad, WeightsSource(bucket, "m"))
    assert err.code == ACCESS_DENIED and bucket in err.object_ref and "AWS_ACCESS_KEY_ID" in err.message


def test_missing_config_json_names_full_path(s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache) -> None:
    put_model(s3, bucket, "models/x", {"model.safetensors": b"\0" * 100})
    err = fail(cache, storage, WeightsSource(bucket, "models/x"))
    assert err.code == MISSING_FILE
    assert err.message.startswith(f"weights path s3://{bucket}/models/x has no config.json")
    assert_nothing_cached(cache)


def test_config_json_excluded_by_patterns_says_so(
    s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache
) -> None:
    put_model(s3, bucket, "m", {"config.json": b"{}", "w.bin": b"1"})
    err = fail(cache, storage, WeightsSource(bucket, "m", allow_patterns=("*.bin",)))
    assert err.code == MISSING_FILE and "excluded" in err.message


def test_object_changed_during_download(s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache) -> None:
    files = model_files(weights_bytes=8 << 20)
    put_model(s3, bucket, "m", files)
    changed: list[bool] = []

    def overwrite_once(_p: DownloadProgress) -> None:
        if not changed:
            changed.append(True)
            s3.put_object(Bucket=bucket, Key="m/model.safetensors", Body=b"replaced while downloading")

    with pytest.raises(WeightsError) as info:
        cache.ensure_sync(storage, WeightsSource(bucket, "m"), progress=overwrite_once)
    assert info.value.code == OBJECT_CHANGED
    assert info.value.object_ref == f"s3://{bucket}/m/model.safetensors"
    assert_nothing_cached(cache)
    assert list((cache.root / "staging").iterdir()) == []  # that version is gone: nothing kept to resume
    # A retry picks up the new version.
    with cache.ensure_sync(storage, WeightsSource(bucket, "m")) as lease:
        assert (lease.path / "model.safetensors").read_bytes() == b"replaced while downloading"


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full(
    s3: Any, bucket: str, storage: StorageConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_model(s3, bucket, "m", model_files(weights_bytes=6 << 20))
    root = tmp_path / "small"
    with small_tmpfs(root, "3m") as mounted:
        if not mounted:
            # Not root / no mount permission: simulate a disk with 3 MiB free, which is what the check reads.
            import shutil as shutil_module

            real = shutil_module.disk_usage
            monkeypatch.setattr(shutil_module, "disk_usage", lambda p: real(p)._replace(free=3 << 20))
        cache = WeightsCache(root / "cache", settings=SETTINGS)
        err = fail(cache, storage, WeightsSource(bucket, "m"))
        assert err.code == DISK_FULL and f"s3://{bucket}/m" in err.object_ref and "free space" in err.message
        assert_nothing_cached(cache)
        assert list((cache.root / "staging").iterdir()) == []


def test_disk_fills_during_download(
    s3: Any, bucket: str, storage: StorageConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free-space check passes (another writer fills the disk later): ENOSPC while reserving the file."""
    put_model(s3, bucket, "m", model_files(weights_bytes=6 << 20))
    mount = tmp_path / "tiny"
    with small_tmpfs(mount, "3m") as mounted:
        if not mounted:
            pytest.skip("cannot mount tmpfs here (not root); the pre-check path is covered by test_disk_full")
        import shutil as shutil_module

        real = shutil_module.disk_usage
        monkeypatch.setattr(shutil_module, "disk_usage", lambda p: real(p)._replace(free=1 << 40))
        cache = WeightsCache(mount / "cache", settings=SETTINGS)
        err = fail(cache, storage, WeightsSource(bucket, "m"))
        assert err.code == DISK_FULL and err.object_ref == f"s3://{bucket}/m/model.safetensors"
        assert_nothing_cached(cache)
        assert list((cache.root / "staging").iterdir()) == []
