"""Node cache behaviour: LRU eviction under a budget that never touches leased entries, and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.weights.helpers import SETTINGS, model_files, put_model, tree
from tide.weights import DownloadProgress, StorageConfig, WeightsCache, WeightsSource
from tide.weights.s3_bucket import S3Bucket

pytestmark = pytest.mark.timeout(60)

MODEL_BYTES = 1 << 20


def put_models(s3: Any, bucket: str, names: list[str]) -> None:
    for name in names:
        put_model(s3, bucket, name, {"config.json": b"{}", "w.bin": bytes([len(name)]) * MODEL_BYTES})


def test_eviction_keeps_leased_entries_and_drops_lru(
    s3: Any, bucket: str, storage: StorageConfig, tmp_path: Path
) -> None:
    put_models(s3, bucket, ["a", "bb", "ccc", "dddd"])
    cache = WeightsCache(tmp_path / "cache", budget_bytes=int(2.5 * MODEL_BYTES), settings=SETTINGS)
    a = cache.ensure_sync(storage, WeightsSource(bucket, "a"))  # held for the whole test
    cache.ensure_sync(storage, WeightsSource(bucket, "bb")).release()
    c = cache.ensure_sync(storage, WeightsSource(bucket, "ccc"))  # over budget: bb (unleased) goes, a stays
    assert sorted(e["path"] for e in cache.entries()) == ["a", "ccc"]
    assert (a.path / "w.bin").stat().st_size == MODEL_BYTES
    c.release()
    d = cache.ensure_sync(storage, WeightsSource(bucket, "dddd"))  # a is older but leased: ccc goes
    assert sorted(e["path"] for e in cache.entries()) == ["a", "dddd"]
    assert cache.used_bytes() <= cache.budget_bytes  # type: ignore[operator]
    a.release()
    d.release()
    cache.ensure_sync(storage, WeightsSource(bucket, "bb")).release()  # a is now free and least recent
    assert sorted(e["path"] for e in cache.entries()) == ["bb", "dddd"]


def test_lru_order_follows_use_not_creation(s3: Any, bucket: str, storage: StorageConfig, tmp_path: Path) -> None:
    put_models(s3, bucket, ["a", "bb", "ccc"])
    cache = WeightsCache(tmp_path / "cache", budget_bytes=int(2.5 * MODEL_BYTES), settings=SETTINGS)
    cache.ensure_sync(storage, WeightsSource(bucket, "a")).release()
    cache.ensure_sync(storage, WeightsSource(bucket, "bb")).release()
    import os
    import time

    # Make "a" the most recently used (mtimes can tie within a test's few milliseconds).
    for entry in cache.entries():
        meta = cache.root / "entries" / f"{entry['name']}.json"
        stamp = time.time() - (100 if entry["path"] == "bb" else 0)
        os.utime(meta, (stamp, stamp))
    cache.ensure_sync(storage, WeightsSource(bucket, "ccc")).release()
    assert sorted(e["path"] for e in cache.entries()) == ["a", "ccc"]


class Interrupted(Exception):
    pass


def test_interrupted_download_resumes_without_refetching(
    s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = model_files(weights_bytes=8 << 20)
    put_model(s3, bucket, "m", files)
    total = sum(len(v) for v in files.values())

    def stop_halfway(p: DownloadProgress) -> None:
        if p.bytes_done > total // 2:
            raise Interrupted()

    with pytest.raises(Interrupted):
        cache.ensure_sync(storage, WeightsSource(bucket, "m"), progress=stop_halfway)
    assert cache.entries() == []  # staging is not an entry

    fetched: list[int] = []
    original = S3Bucket.read_into

    def counting(self: S3Bucket, obj: Any, start: int, end: int, fd: int, on_bytes: Any) -> None:
        fetched.append(end - start)
        original(self, obj, start, end, fd, on_bytes)

    monkeypatch.setattr(S3Bucket, "read_into", counting)
    seen: list[DownloadProgress] = []
    with cache.ensure_sync(storage, WeightsSource(bucket, "m"), progress=seen.append) as lease:
        assert tree(lease.path) == files
    assert sum(fetched) <= total - total // 2 + SETTINGS.threads * SETTINGS.range_bytes
    assert sum(fetched) < total
    assert (
        seen[0].bytes_done >= total // 2 - SETTINGS.threads * SETTINGS.range_bytes
    )  # progress starts where it stopped
    assert list((cache.root / "staging").iterdir()) == []
