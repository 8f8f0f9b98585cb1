"""What the data directory keeps of replica logs: a deployment's newest logs (a crash loop adds a file per
try), a deleted deployment's logs for a retention period, and nothing of an earlier deployment whose id a
new one reuses. The decision is pure (`logs_to_remove`); `sweep_logs` does the listing and deleting."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LogFile:
    path: Path
    deployment_id: str
    modified: float  # seconds since the epoch, the clock deployments' created_at uses


def logs_to_remove(
    files: Iterable[LogFile],
    deployments: Mapping[str, float],
    live: Collection[Path],
    now: float,
    retention_s: float | None,
    keep_per_deployment: int,
) -> list[Path]:
    """`deployments`: id -> created_at of those in the store; `live`: logs of replicas that still run
    (never removed). A deployment's logs older than its creation belong to an earlier one with its id;
    past the newest `keep_per_deployment` they are old crash-loop tries; a deleted deployment's logs go
    once `retention_s` old (None: kept)."""
    by_deployment: dict[str, list[LogFile]] = {}
    for file in files:
        by_deployment.setdefault(file.deployment_id, []).append(file)
    remove: list[Path] = []
    for deployment_id, group in by_deployment.items():
        candidates = [f for f in group if f.path not in live]
        created_at = deployments.get(deployment_id)
        if created_at is None:
            if retention_s is not None:
                remove += [f.path for f in candidates if now - f.modified > retention_s]
            continue
        earlier = [f for f in candidates if f.modified < created_at]
        remove += [f.path for f in earlier]
        current = sorted((f for f in group if f not in earlier), key=lambda f: f.modified, reverse=True)
        remove += [f.path for f in current[keep_per_deployment:] if f.path not in live]
    return remove


def sweep_logs(
    logs_dir: Path,
    deployments: Mapping[str, float],
    live: Collection[Path],
    now: float,
    retention_s: float | None,
    keep_per_deployment: int,
) -> int:
    """Delete what `logs_to_remove` says, and folders left empty. Returns the files removed."""
    files: list[LogFile] = []
    if not logs_dir.is_dir():
        return 0
    for folder in logs_dir.iterdir():
        if not folder.is_dir():
            continue
        for path in folder.glob("*.log"):
            with contextlib.suppress(OSError):
                files.append(LogFile(path, folder.name, path.stat().st_mtime))
    removed = 0
    for path in logs_to_remove(files, deployments, live, now, retention_s, keep_per_deployment):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    for folder in logs_dir.iterdir():
        if folder.is_dir() and folder.name not in deployments:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
    return removed
