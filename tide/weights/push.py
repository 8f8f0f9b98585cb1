"""Bring-your-own-weights: upload a directory to a bucket, and prefetch a bucket path into the node cache."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tide.spec.names import object_path_problem
from tide.weights.cache import WeightsCache
from tide.weights.errors import MISSING_FILE, PATH_NOT_FOUND, WeightsError
from tide.weights.progress import ProgressCallback, ProgressTracker
from tide.weights.storage import StorageConfig, WeightsSource

_PARALLEL_FILES = 4  # each large S3 file is itself multipart with 8 threads


def push_directory(
    local_dir: Path,
    bucket: str,
    path: str,
    config: StorageConfig,
    progress: ProgressCallback | None = None,
    require: Sequence[str] = ("config.json",),
) -> int:
    """Upload every file under `local_dir` to `bucket/path/` (S3: multipart above 64 MiB; file bucket:
    atomic copies). Returns the bytes uploaded. `progress` is called from worker threads."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise WeightsError(PATH_NOT_FOUND, f"{local_dir} is not a directory", str(local_dir))
    files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    for required in require:
        if not (local_dir / required).is_file():
            raise WeightsError(
                MISSING_FILE,
                f"{local_dir} has no {required}: engines need it to load the model",
                str(local_dir / required),
            )
    target = config.resolve_for_upload(bucket)
    prefix = path.strip("/")
    tracker = ProgressTracker(sum(f.stat().st_size for f in files), len(files), [progress] if progress else [])

    def upload(file: Path) -> None:
        rel = file.relative_to(local_dir).as_posix()
        target.upload(file, f"{prefix}/{rel}" if prefix else rel, tracker.add_bytes)
        tracker.file_done()

    with ThreadPoolExecutor(max_workers=_PARALLEL_FILES, thread_name_prefix="tide-push") as pool:
        for future in [pool.submit(upload, f) for f in files]:
            future.result()
    tracker.emit()
    return tracker.bytes_total


def pull(
    bucket: str,
    path: str,
    config: StorageConfig,
    cache: WeightsCache,
    progress: ProgressCallback | None = None,
    allow_patterns: Sequence[str] = (),
    ignore_patterns: Sequence[str] = (),
    require: Sequence[str] = ("config.json",),
) -> Path:
    """Prefetch into the node cache; returns the entry's directory (not leased: it may later be evicted)."""
    source = WeightsSource(bucket, path, tuple(allow_patterns), tuple(ignore_patterns))
    with cache.ensure_sync(config, source, progress=progress, require=require) as lease:
        return lease.path


def parse_bucket_path(text: str) -> tuple[str, str]:
    """`BUCKET/PATH` or `s3://BUCKET/PATH` -> (bucket, path). Refuses absolute paths and '..': a path
    names objects inside one bucket, never a place outside the buckets root."""
    if text.startswith("/"):
        raise WeightsError(PATH_NOT_FOUND, f"expected BUCKET/PATH, got the absolute path {text!r}", text)
    body = text.removeprefix("s3://").rstrip("/")
    bucket, _, path = body.partition("/")
    if not bucket or not path:
        raise WeightsError(PATH_NOT_FOUND, f"expected BUCKET/PATH, got {text!r}", text)
    problem = object_path_problem(bucket) or object_path_problem(path)
    if problem is not None:
        raise WeightsError(PATH_NOT_FOUND, problem, text)
    return bucket, path
