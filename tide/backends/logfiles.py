"""Replica log files (`<logs_dir>/<deployment>/<replica>.log`, written by both backends): the last lines,
or what was appended since a byte offset (`tide logs -f`).

Reads never load a whole file: a tail reads backwards from the end in blocks; a follow reads at most
`FOLLOW_MAX_BYTES` past the offset and stops at the last complete line, so a line being written is
returned whole on a later call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TAIL_BLOCK_BYTES = 64 * 1024
FOLLOW_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LogText:
    text: str  # whole lines, newline-terminated, or "" when nothing is new
    end: int  # the byte offset just after `text`: pass it back to continue from there


def open_private_log(path: Path) -> BinaryIO:
    """A replica's log for appending, readable by its owner only (it holds prompts and engine errors)."""
    path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


def read_replica_logs(
    logs_dir: Path, deployment_id: str, tail_lines: int, after: Mapping[str, int] | None = None
) -> dict[str, LogText]:
    """Each replica's log, oldest replica first. Without `after`: its last `tail_lines` lines. With `after`
    (replica id -> offset): what each replica wrote past its offset; a replica not in `after` (new since
    the caller last looked) from its start; a log now shorter than its offset (replaced) from its start."""
    folder = logs_dir / deployment_id
    if not folder.is_dir():
        return {}
    out: dict[str, LogText] = {}
    for path in sorted(folder.glob("*.log"), key=_modified):
        try:
            if after is None:
                out[path.stem] = tail_lines_of(path, tail_lines)
            else:
                out[path.stem] = lines_after(path, after.get(path.stem, 0))
        except OSError:  # removed while listing
            continue
    return out


def tail_lines_of(path: Path, lines: int) -> LogText:
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        position, data = end, b""
        # One more newline than lines wanted: the text before it is an earlier line, left out.
        while position > 0 and data.count(b"\n") <= lines:
            step = min(TAIL_BLOCK_BYTES, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
    kept = data.splitlines(keepends=True)[-lines:] if lines > 0 else []
    text = b"".join(kept)
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return LogText(text.decode(errors="replace"), end)


def lines_after(path: Path, offset: int) -> LogText:
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < offset:  # the file was replaced by a shorter one: start over
            offset = 0
        f.seek(offset)
        data = f.read(FOLLOW_MAX_BYTES)
    last_newline = data.rfind(b"\n")
    if last_newline < 0:
        # No complete line yet (or one longer than the read): wait for it, unless it can never fit.
        if len(data) < FOLLOW_MAX_BYTES:
            return LogText("", offset)
        return LogText(data.decode(errors="replace") + "\n", offset + len(data))
    whole = data[: last_newline + 1]
    return LogText(whole.decode(errors="replace"), offset + len(whole))


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
