"""Download progress: a snapshot type and a thread-safe tracker that throttles callbacks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DownloadProgress:
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    rate_bytes_per_s: float

    @property
    def percent(self) -> float:
        if self.bytes_total <= 0:
            return 100.0 if self.files_done >= self.files_total else 0.0
        return 100.0 * self.bytes_done / self.bytes_total

    @property
    def finished(self) -> bool:
        return self.files_done >= self.files_total and self.bytes_done >= self.bytes_total


ProgressCallback = Callable[[DownloadProgress], None]


class ProgressTracker:
    """Counts bytes and files from many worker threads; calls the listeners at most every `interval_s`
    (and always on a finished file and at the end).

    Listeners run on the worker thread that crossed the interval: they must be quick and thread-safe
    (from asyncio, hand the value over with `loop.call_soon_threadsafe`). An exception in a listener
    aborts the transfer, which stays resumable.
    """

    def __init__(
        self,
        bytes_total: int,
        files_total: int,
        listeners: list[ProgressCallback] | None = None,
        interval_s: float = 0.1,
        bytes_already: int = 0,
        files_already: int = 0,
    ) -> None:
        self.bytes_total = bytes_total
        self.files_total = files_total
        self._listeners = list(listeners or [])
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._bytes_done = bytes_already
        self._files_done = files_already
        self._bytes_at_start = bytes_already  # resumed bytes do not count toward the rate
        self._started = time.monotonic()
        self._last_emit = 0.0

    def add_listener(self, listener: ProgressCallback) -> None:
        with self._lock:
            self._listeners.append(listener)

    def snapshot(self) -> DownloadProgress:
        with self._lock:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> DownloadProgress:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = (self._bytes_done - self._bytes_at_start) / elapsed
        return DownloadProgress(self._bytes_done, self.bytes_total, self._files_done, self.files_total, rate)

    def add_bytes(self, n: int) -> None:
        self._update(n, 0, force=False)

    def file_done(self) -> None:
        self._update(0, 1, force=True)

    def emit(self) -> None:
        self._update(0, 0, force=True)

    def _update(self, n_bytes: int, n_files: int, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self._bytes_done += n_bytes
            self._files_done += n_files
            if not force and now - self._last_emit < self._interval_s:
                return
            self._last_emit = now
        # Snapshot and call under one lock, so listeners see counts in order whatever thread emits.
        with self._emit_lock:
            with self._lock:
                snap = self._snapshot_locked()
                listeners = list(self._listeners)
            for listener in listeners:
                listener(snap)
