"""Bring-your-own-weights: push a directory (multipart for large files), pull it into the cache."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from tests.weights.helpers import tree
from tide.weights import DownloadProgress, StorageConfig, WeightsCache, parse_bucket_path, pull, push_directory
from tide.weights import s3_bucket as s3_bucket_module
from tide.weights.progress_bar import ProgressBar, render

pytestmark = pytest.mark.timeout(60)


def make_dir(base: Path, big_bytes: int) -> dict[str, bytes]:
    files = {"config.json": b"{}", "model.safetensors": os.urandom(big_bytes), "sub/tok.json": b"[]"}
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    return files


def test_push_then_pull_s3_multipart(
    s3: Any, bucket: str, storage: StorageConfig, cache: WeightsCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_bucket_module, "_MULTIPART_BYTES", 5 << 20)  # S3's smallest part size
    files = make_dir(tmp_path / "src", big_bytes=11 << 20)
    seen: list[DownloadProgress] = []
    pushed = push_directory(tmp_path / "src", bucket, "byo/model", storage, progress=seen.append)
    assert pushed == sum(len(v) for v in files.values()) and seen[-1].finished
    head = s3.head_object(Bucket=bucket, Key="byo/model/model.safetensors")
    assert "-" in head["ETag"]  # multipart upload
    path = pull(bucket, "byo/model", storage, cache)
    assert tree(path) == files


def test_push_to_new_file_bucket_then_pull(tmp_path: Path, cache: WeightsCache) -> None:
    files = make_dir(tmp_path / "src", big_bytes=1000)
    storage = StorageConfig(local_root=tmp_path / "buckets")
    push_directory(tmp_path / "src", "mine", "models/a", storage)
    assert tree(tmp_path / "buckets/mine/models/a") == files
    assert tree(pull("mine", "models/a", storage, cache)) == files


def test_parse_bucket_path_and_progress_bar() -> None:
    assert parse_bucket_path("s3://b/models/x/") == ("b", "models/x")
    assert parse_bucket_path("b/m") == ("b", "m")
    line = render(DownloadProgress(500_000_000, 1_000_000_000, 1, 3, 250_000_000))
    assert " 50.0%" in line and "500.0 MB/1.0 GB" in line and "1/3 files" in line and "250.0 MB/s" in line
    out = io.StringIO()
    with ProgressBar("pull", stream=out) as bar:
        for done in range(0, 11):
            bar(DownloadProgress(done * 100, 1000, done // 10, 1, 10.0))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("pull [") and "100.0%" in lines[-1] and len(lines) == 11


@pytest.mark.parametrize("command", ["push", "pull"])
@pytest.mark.parametrize("where", ["mine/../../outside", "/etc/passwd", "mine/a/../../../x", "../mine/a"])
def test_weights_cli_refuses_paths_outside_the_buckets(tmp_path: Path, command: str, where: str) -> None:
    from click.testing import CliRunner

    from tide import cli

    src = tmp_path / "src"
    make_dir(src, big_bytes=10)
    (tmp_path / "data" / "buckets" / "mine" / "a").mkdir(parents=True)
    make_dir(tmp_path / "data" / "buckets" / "mine" / "a", big_bytes=10)
    make_dir(tmp_path / "outside", big_bytes=10)
    args = ["push", str(src), where] if command == "push" else ["pull", where]
    env = {"TIDE_BUCKETS_DIR": "", "TIDE_S3_ENDPOINT_URL": ""}
    result = CliRunner().invoke(cli.main, ["--data-dir", str(tmp_path / "data"), "weights", *args], env=env)
    assert result.exit_code == 2, result.output
    assert ("TARGET" if command == "push" else "SOURCE") in result.output
    assert not (tmp_path / "data" / "cache").exists() or not any((tmp_path / "data" / "cache").rglob("config.json"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "data" / "outside").exists()
