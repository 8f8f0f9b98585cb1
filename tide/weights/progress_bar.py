"""A one-line terminal progress bar for `tide weights push/pull` (stdlib only, thread-safe)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from tide.weights.progress import DownloadProgress


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def render(p: DownloadProgress, width: int = 30) -> str:
    filled = int(width * min(p.percent, 100.0) / 100)
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"[{bar}] {p.percent:5.1f}%  {_human(p.bytes_done)}/{_human(p.bytes_total)}  "
        f"{p.files_done}/{p.files_total} files  {_human(p.rate_bytes_per_s)}/s"
    )


class ProgressBar:
    """Pass as the `progress` callback; call `close()` at the end. Redraws in place on a terminal and
    prints a line per update (at most every `min_interval` files/percent step) otherwise."""

    def __init__(self, label: str = "", stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._last: DownloadProgress | None = None
        self._last_percent_printed = -10.0
        self._tty = self.stream.isatty()

    def __call__(self, progress: DownloadProgress) -> None:
        with self._lock:
            self._last = progress
            line = f"{self.label} {render(progress)}".strip()
            if self._tty:
                self.stream.write("\r" + line)
                self.stream.flush()
            elif progress.percent - self._last_percent_printed >= 10 or progress.finished:
                if progress.finished and self._last_percent_printed >= 100:
                    return
                self._last_percent_printed = progress.percent
                self.stream.write(line + "\n")
                self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._tty and self._last is not None:
                self.stream.write("\n")
                self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
