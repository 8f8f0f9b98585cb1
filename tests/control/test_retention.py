"""Replica logs do not grow without bound: crash-loop tries, deleted deployments and reused ids."""

from __future__ import annotations

import os
from pathlib import Path

from tide.control.retention import LogFile, logs_to_remove, sweep_logs

DAY = 86400.0


def log(tmp: Path, deployment: str, replica: str, modified: float) -> Path:
    path = tmp / deployment / f"{replica}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("line\n")
    os.utime(path, (modified, modified))
    return path


def test_crash_loop_files_beyond_the_newest_are_removed_but_live_ones_never() -> None:
    files = [LogFile(Path(f"/l/chat/r{i}.log"), "chat", 100.0 + i) for i in range(30)]
    live = {Path("/l/chat/r0.log")}  # the oldest file, but its replica still runs
    removed = set(logs_to_remove(files, {"chat": 0.0}, live, 200.0, None, keep_per_deployment=20))
    assert removed == {Path(f"/l/chat/r{i}.log") for i in range(1, 10)}


def test_sweep_removes_deleted_deployments_after_retention_and_earlier_deployments_with_a_reused_id(
    tmp_path: Path,
) -> None:
    now = 100 * DAY
    old_deleted = log(tmp_path, "gone", "gone-1", now - 8 * DAY)
    recent_deleted = log(tmp_path, "gone-recently", "r-1", now - 1 * DAY)
    previous_life = log(tmp_path, "chat", "chat-old", now - 2 * DAY)  # an earlier "chat", deleted, then re-created
    current = log(tmp_path, "chat", "chat-new", now - 10)
    removed = sweep_logs(tmp_path, {"chat": now - DAY}, set(), now, retention_s=7 * DAY, keep_per_deployment=20)
    assert removed == 2
    assert not old_deleted.exists() and not old_deleted.parent.exists()
    assert not previous_life.exists()
    assert recent_deleted.exists() and current.exists()
