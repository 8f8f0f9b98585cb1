"""The node cache: one verified copy of each weights version, shared by every replica on the node.

Layout under `root`:
- `entries/<name>/` the weights directory an engine loads; `entries/<name>.json` its metadata. An entry
  counts only when both exist (the directory is renamed in first, the metadata written last).
- `staging/<name>/` a download in progress or interrupted (resumable); never an entry, never evicted.
- `locks/<name>.lock` held exclusively by the one process downloading that entry;
  `locks/<name>.lease` held shared by every lease, so eviction (which needs it exclusively) skips
  entries in use, in this process or any other.

Entries are keyed by bucket location, path, patterns and every object's size and version (ETag or
mtime), so a changed source is a new entry and the old one ages out by LRU.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tide.weights.errors import BUCKET_NOT_FOUND, CORRUPT, DISK_FULL, MISSING_FILE, OBJECT_CHANGED, WeightsError
from tide.weights.objects import Bucket, ObjectInfo, select
from tide.weights.progress import DownloadProgress, ProgressCallback, ProgressTracker
from tide.weights.storage import StorageConfig, WeightsSource
from tide.weights.transfer import TransferSettings, download, staged_bytes, verify_manifest

# Errors after which the staged bytes are worthless (the source moved on, or we must free the space).
_DISCARD_STAGING = {OBJECT_CHANGED, DISK_FULL, CORRUPT}


class CacheLease:
    """A weights directory held in the cache: not evicted until `release()` (idempotent)."""

    def __init__(self, path: Path, key: str, fd: int, downloaded: bool) -> None:
        self.path = path
        self.key = key
        self.downloaded = downloaded  # True when this call did the download (not a hit or a wait)
        self._fd: int | None = fd
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # drops the shared flock

    @property
    def released(self) -> bool:
        return self._fd is None

    def __enter__(self) -> CacheLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


@dataclass(frozen=True)
class _Plan:
    bucket: Bucket
    source: WeightsSource
    objects: list[ObjectInfo]
    name: str

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def ref(self) -> str:
        return self.bucket.uri(self.source.prefix)


@dataclass
class _Inflight:
    future: Future[None] = field(default_factory=Future)
    listeners: list[ProgressCallback] = field(default_factory=list)
    downloaded: bool = False  # set by the owner: False when another process had already filled it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, listener: ProgressCallback | None) -> None:
        if listener is not None:
            with self.lock:
                self.listeners.append(listener)

    def fan_out(self, progress: DownloadProgress) -> None:
        with self.lock:
            listeners = list(self.listeners)
        for listener in listeners:
            listener(progress)


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit] or "root"


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)


class WeightsCache:
    def __init__(self, root: Path, budget_bytes: int | None = None, settings: TransferSettings | None = None) -> None:
        self.root = Path(root)
        self.budget_bytes = budget_bytes
        self.settings = settings or TransferSettings()
        self.entries_dir = self.root / "entries"
        self.staging_dir = self.root / "staging"
        self.locks_dir = self.root / "locks"
        self.trash_dir = self.root / "trash"
        for d in (self.entries_dir, self.staging_dir, self.locks_dir, self.trash_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._inflight: dict[str, _Inflight] = {}
        self._guard = threading.Lock()

    # ---- public API -------------------------------------------------------------------------

    async def ensure(
        self,
        storage: StorageConfig,
        source: WeightsSource,
        *,
        progress: ProgressCallback | None = None,
        require: Sequence[str] = ("config.json",),
    ) -> CacheLease:
        """The weights in the cache, downloading them once if needed, leased until `release()`.

        `progress` is called from download worker threads (see ProgressTracker): use
        `loop.call_soon_threadsafe` inside it to touch loop-owned state. Concurrent calls for the same
        source share one download (in this process and, through a file lock, across processes).
        Cancelling the caller does not stop a download others may be waiting for.
        """
        plan = await asyncio.to_thread(self._plan, storage, source, require)
        while True:
            lease = await asyncio.to_thread(self._try_lease, plan.name, False)
            if lease is not None:
                return self._report_hit(plan, lease, progress)
            record, owner = self._join(plan.name, progress)
            if owner:
                threading.Thread(
                    target=self._own_download, args=(plan, record), name="tide-weights-fill", daemon=True
                ).start()
            await asyncio.shield(asyncio.wrap_future(record.future))
            lease = await asyncio.to_thread(self._try_lease, plan.name, owner and record.downloaded)
            if lease is not None:
                return lease

    def ensure_sync(
        self,
        storage: StorageConfig,
        source: WeightsSource,
        *,
        progress: ProgressCallback | None = None,
        require: Sequence[str] = ("config.json",),
    ) -> CacheLease:
        """Blocking twin of `ensure` (for the CLI and scripts)."""
        plan = self._plan(storage, source, require)
        while True:
            lease = self._try_lease(plan.name, False)
            if lease is not None:
                return self._report_hit(plan, lease, progress)
            record, owner = self._join(plan.name, progress)
            if owner:
                self._own_download(plan, record)
            record.future.result()
            lease = self._try_lease(plan.name, owner and record.downloaded)
            if lease is not None:
                return lease

    def entries(self) -> list[dict[str, Any]]:
        """Metadata of every complete entry, least recently used first."""
        out = []
        for meta_path in self.entries_dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                meta = json.loads(meta_path.read_text())
                meta["last_used"] = meta_path.stat().st_mtime
                if (self.entries_dir / meta["name"]).is_dir():
                    out.append(meta)
        return sorted(out, key=lambda m: m["last_used"])

    def used_bytes(self) -> int:
        return sum(int(m["bytes"]) for m in self.entries())

    def evict(self, extra_bytes: int = 0, keep: str | None = None) -> list[str]:
        """Drop least recently used, unleased entries until entries + `extra_bytes` fit the budget.
        Returns the names evicted. Leased entries are skipped, so the budget can be exceeded while they
        are in use."""
        if self.budget_bytes is None:
            return []
        evicted: list[str] = []
        with _flock(self.locks_dir / "cache.lock", fcntl.LOCK_EX):
            entries = self.entries()
            total = sum(int(m["bytes"]) for m in entries)
            for meta in entries:
                if total + extra_bytes <= self.budget_bytes:
                    break
                name = meta["name"]
                if name == keep:
                    continue
                if self._remove_if_unleased(name):
                    total -= int(meta["bytes"])
                    evicted.append(name)
        return evicted

    def check(self, storage: StorageConfig, source: WeightsSource, require: Sequence[str] = ("config.json",)) -> None:
        """Raise the WeightsError a fetch of `source` would raise for a missing bucket, path or required
        file, without downloading anything (one listing). Blocking: call it from a thread."""
        self._plan(storage, source, require)

    # ---- planning -----------------------------------------------------------------------------

    def _plan(self, storage: StorageConfig, source: WeightsSource, require: Sequence[str]) -> _Plan:
        bucket = storage.resolve(source.bucket, max_connections=self.settings.threads + 4)
        try:
            listed = bucket.list(source.prefix)
        except WeightsError as exc:
            if exc.code == BUCKET_NOT_FOUND:
                raise WeightsError(
                    BUCKET_NOT_FOUND,
                    f"bucket {source.bucket!r} not found; looked in {storage.places(source.bucket)}",
                    exc.object_ref,
                ) from exc
            raise
        objects = select(listed, source.allow_patterns, source.ignore_patterns)
        ref = bucket.uri(source.prefix)
        chosen = {o.rel for o in objects}
        for required in require:
            if required not in chosen:
                filtered = any(o.rel == required for o in listed)
                hint = " (it is excluded by allowPatterns/ignorePatterns)" if filtered else ""
                raise WeightsError(MISSING_FILE, f"weights path {ref} has no {required}{hint}", f"{ref}/{required}")
        if not objects:
            raise WeightsError(
                MISSING_FILE, f"weights path {ref} has no files matching allowPatterns/ignorePatterns", ref
            )
        identity = {
            "location": bucket.location,
            "bucket": source.bucket,
            "path": source.prefix,
            "files": [[o.rel, o.size, o.version] for o in objects],
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        name = f"{_slug(source.bucket, 40)}--{_slug(source.prefix, 80)}--{digest}"
        return _Plan(bucket=bucket, source=source, objects=objects, name=name)

    @staticmethod
    def _report_hit(plan: _Plan, lease: CacheLease, progress: ProgressCallback | None) -> CacheLease:
        """A cache hit still tells the caller it is at 100 %, so status displays need no special case."""
        if progress is not None:
            n = len(plan.objects)
            progress(DownloadProgress(plan.total_bytes, plan.total_bytes, n, n, 0.0))
        return lease

    # ---- leases -------------------------------------------------------------------------------

    def _complete(self, name: str) -> bool:
        return (self.entries_dir / f"{name}.json").exists() and (self.entries_dir / name).is_dir()

    def _try_lease(self, name: str, downloaded: bool) -> CacheLease | None:
        fd = os.open(self.locks_dir / f"{name}.lease", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while an eviction of this entry is deciding
        if not self._complete(name):
            os.close(fd)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.entries_dir / f"{name}.json")  # LRU clock
        return CacheLease(self.entries_dir / name, name, fd, downloaded)

    def _remove_if_unleased(self, name: str) -> bool:
        fd = os.open(self.locks_dir / f"{name}.lease", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._remove_entry(name)
            return True
        finally:
            os.close(fd)

    def _remove_entry(self, name: str) -> None:
        (self.entries_dir / f"{name}.json").unlink(missing_ok=True)  # no longer an entry from here on
        target = self.entries_dir / name
        if target.exists():
            doomed = self.trash_dir / f"{name}-{uuid.uuid4().hex[:8]}"
            os.rename(target, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    # ---- downloading --------------------------------------------------------------------------

    def _join(self, name: str, progress: ProgressCallback | None) -> tuple[_Inflight, bool]:
        with self._guard:
            record = self._inflight.get(name)
            owner = record is None
            if record is None:
                record = self._inflight[name] = _Inflight()
            record.add(progress)
            return record, owner

    def _own_download(self, plan: _Plan, record: _Inflight) -> None:
        try:
            record.downloaded = self._fill(plan, record)
        except BaseException as exc:
            with self._guard:
                self._inflight.pop(plan.name, None)
            record.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        with self._guard:
            self._inflight.pop(plan.name, None)
        record.future.set_result(None)

    def _fill(self, plan: _Plan, record: _Inflight) -> bool:
        with _flock(self.locks_dir / f"{plan.name}.lock", fcntl.LOCK_EX):
            if self._complete(plan.name):
                return False  # another process finished it while we waited for the lock
            staging = self.staging_dir / plan.name
            staging.mkdir(parents=True, exist_ok=True)
            bytes_done, files_done = staged_bytes(staging, plan.objects, self.settings.range_bytes)
            needed = plan.total_bytes - bytes_done
            self.evict(extra_bytes=plan.total_bytes, keep=plan.name)
            free = shutil.disk_usage(self.root).free
            if needed > free:
                shutil.rmtree(staging, ignore_errors=True)
                raise WeightsError(
                    DISK_FULL,
                    f"weights {plan.ref} need {needed / 1e9:.2f} GB but the cache at {self.root} has {free / 1e9:.2f} GB free: free space or lower the cache budget",
                    plan.ref,
                )
            tracker = ProgressTracker(
                plan.total_bytes,
                len(plan.objects),
                [record.fan_out],
                bytes_already=bytes_done,
                files_already=files_done,
            )
            try:
                download(plan.bucket, plan.objects, staging, tracker, self.settings)
                verify_manifest(staging / "data", plan.ref)
            except WeightsError as exc:
                if exc.code in _DISCARD_STAGING:
                    shutil.rmtree(staging, ignore_errors=True)
                raise
            self._commit(plan, staging)
        self.evict(keep=plan.name)
        return True

    def _commit(self, plan: _Plan, staging: Path) -> None:
        target = self.entries_dir / plan.name
        if target.exists():  # left by a crash between rename and metadata: not an entry, replace it
            self._remove_entry(plan.name)
        os.rename(staging / "data", target)
        meta = {
            "name": plan.name,
            "uri": plan.ref,
            "location": plan.bucket.location,
            "bucket": plan.source.bucket,
            "path": plan.source.prefix,
            "bytes": plan.total_bytes,
            "files": len(plan.objects),
            "created": time.time(),
        }
        tmp = self.entries_dir / f".{plan.name}.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.entries_dir / f"{plan.name}.json")
        shutil.rmtree(staging, ignore_errors=True)
