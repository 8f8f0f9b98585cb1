"""Downloading from a real S3 server (SeaweedFS) into the node cache."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.weights.helpers import SETTINGS, model_files, put_model, tree
from tide.weights import DownloadProgress, StorageConfig, WeightsCache, WeightsSource
from tide.weights.s3_bucket import S3Bucket

pytestmark = pytest.mark.timeout(60)


def test_multi_range_download_gives_identical_bytes_and_progress(
    s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache
) -> None:
    files = model_files()
    put_model(s3, bucket, "models/tiny", files)
    seen: list[DownloadProgress] = []
    lease = asyncio.run(cache.ensure(storage, WeightsSource(bucket, "models/tiny"), progress=seen.append))
    try:
        assert tree(lease.path) == files
        assert lease.downloaded
        last = seen[-1]
        total = sum(len(v) for v in files.values())
        assert (last.bytes_done, last.bytes_total, last.files_done, last.files_total) == (total, total, 5, 5)
        assert last.percent == 100.0
        assert all(a.bytes_done <= b.bytes_done for a, b in itertools.pairwise(seen))
    finally:
        lease.release()
    # Second call: a cache hit, no download.
    hit: list[DownloadProgress] = []
    again = cache.ensure_sync(storage, WeightsSource(bucket, "models/tiny"), progress=hit.append)
    assert again.path == lease.path and not again.downloaded
    assert [p.percent for p in hit] == [100.0]
    again.release()
    assert not list((cache.root / "staging").iterdir())


def test_allow_and_ignore_patterns(s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache) -> None:
    files = model_files(weights_bytes=1000)
    put_model(s3, bucket, "m", files)
    source = WeightsSource(
        bucket, "m", allow_patterns=("*.json", "*.safetensors", "extra/*"), ignore_patterns=("extra/*",)
    )
    with cache.ensure_sync(storage, source) as lease:
        assert sorted(tree(lease.path)) == ["config.json", "model.safetensors", "tokenizer.json"]
    # Different patterns are a different entry.
    with cache.ensure_sync(storage, WeightsSource(bucket, "m", ignore_patterns=("original/*",))) as lease2:
        assert sorted(tree(lease2.path)) == ["config.json", "extra/notes.md", "model.safetensors", "tokenizer.json"]
        assert lease2.path != lease.path


def test_changed_source_is_a_new_entry(s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache) -> None:
    files = model_files(weights_bytes=2000)
    put_model(s3, bucket, "m", files)
    with cache.ensure_sync(storage, WeightsSource(bucket, "m")) as first:
        first_path = first.path
    s3.put_object(Bucket=bucket, Key="m/model.safetensors", Body=b"new weights")
    with cache.ensure_sync(storage, WeightsSource(bucket, "m")) as second:
        assert second.path != first_path
        assert (second.path / "model.safetensors").read_bytes() == b"new weights"


def _count_gets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    calls: list[tuple[str, int, int]] = []
    original = S3Bucket.read_into

    def counting(self: S3Bucket, obj: Any, start: int, end: int, fd: int, on_bytes: Any) -> None:
        calls.append((obj.key, start, end))
        original(self, obj, start, end, fd, on_bytes)

    monkeypatch.setattr(S3Bucket, "read_into", counting)
    return calls


def test_concurrent_ensures_share_one_download(
    s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = model_files()
    put_model(s3, bucket, "m", files)
    gets = _count_gets(monkeypatch)
    progress_calls = [0] * 5

    def progress_for(i: int) -> Any:
        def cb(_p: DownloadProgress) -> None:
            progress_calls[i] += 1

        return cb

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.ensure(storage, WeightsSource(bucket, "m"), progress=progress_for(i)) for i in range(5))
        )

    leases = asyncio.run(main())
    expected_gets = 4 + len(range(0, len(files["model.safetensors"]), SETTINGS.range_bytes))
    assert len(gets) == expected_gets  # one GET per range and per small file: a single download
    assert len({lease.path for lease in leases}) == 1
    assert sum(lease.downloaded for lease in leases) == 1
    assert all(n > 0 for n in progress_calls)  # waiters see the shared download's progress
    for lease in leases:
        lease.release()


CROSS_PROCESS = """
import sys, time
from pathlib import Path
from tide.weights import StorageConfig, TransferSettings, WeightsCache, WeightsSource
storage = StorageConfig(None, sys.argv[1], "us-east-1", "test", "test")
cache = WeightsCache(Path(sys.argv[2]), settings=TransferSettings(range_bytes=1 << 20, threads=2))
lease = cache.ensure_sync(storage, WeightsSource(sys.argv[3], "m"), progress=lambda p: time.sleep(0.3))
print("DOWNLOADED" if lease.downloaded else "WAITED", lease.path)
"""


def test_concurrent_processes_share_one_download(s3: Any, bucket: str, seaweed: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    put_model(s3, bucket, "m", model_files())
    cache_root = tmp_path / "shared-cache"
    args = [sys.executable, "-c", CROSS_PROCESS, seaweed.endpoint_url, str(cache_root), bucket]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=50)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(o.split()[0] for o in outs) == ["DOWNLOADED", "WAITED"]
    assert len({o.split()[1] for o in outs}) == 1
