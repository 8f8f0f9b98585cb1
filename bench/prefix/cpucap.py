"""A fixed CPU share per replica, as a replica with its own accelerator has fixed compute.

On a small CPU machine, replicas that share cores are not independent: one replica taking every request
runs on cores its idle neighbours leave, so concentrating requests looks free there and spreading them
looks costly, the opposite of replicas on their own GPUs. A cgroup CPU bandwidth limit (cgroup v1
`cpu.cfs_quota_us`, v2 `cpu.max`) caps each replica's process tree at `cpus` cores of CPU time whatever
the others do, and weighs it above other work on the machine, so that up to the cap it gets its CPU time
when the machine is busy. Needs write access to the cgroup filesystem (root, or a delegated subtree).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 10_000  # a short period: a long prefill is slowed evenly, not run then stopped for 100 ms
WEIGHT = 8  # x the default share when cores are contended: the cap is the replica's, not what others leave


def _root() -> tuple[Path, int]:
    if (V1_ROOT / "cpu.cfs_quota_us").exists():
        return V1_ROOT, 1
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return V2_ROOT, 2
    raise SystemExit("--replica-cpus: no cgroup CPU controller at /sys/fs/cgroup/cpu (v1) or /sys/fs/cgroup (v2)")


class CpuCap:
    """One cgroup limited to `cpus` cores of CPU time; commands started through `wrap` run inside it."""

    def __init__(self, name: str, cpus: float) -> None:
        if cpus <= 0:
            raise SystemExit(f"--replica-cpus must be > 0 (got {cpus:g})")
        root, self.version = _root()
        self.path = root / f"tide-bench-{os.getpid()}-{name}"
        quota = max(1000, round(cpus * PERIOD_US))
        try:
            self.path.mkdir(exist_ok=True)
            if self.version == 1:
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
                (self.path / "cpu.shares").write_text(str(1024 * WEIGHT))
            else:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
                (self.path / "cpu.weight").write_text(str(100 * WEIGHT))
        except OSError as error:
            raise SystemExit(f"--replica-cpus: cannot set up cgroup {self.path}: {error} (run as root)") from error

    def wrap(self, command: list[str]) -> list[str]:
        """`command`, entering the group before it starts (its children inherit the group)."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *command]

    def throttled_s(self) -> float:
        """Seconds the group's processes were held back by the limit, so far."""
        stat = dict(line.split()[:2] for line in (self.path / "cpu.stat").read_text().splitlines())
        if self.version == 1:
            return int(stat.get("throttled_time", 0)) / 1e9
        return int(stat.get("throttled_usec", 0)) / 1e6

    def remove(self) -> None:
        """Remove the group once its processes are gone (a group with processes cannot be removed); says so
        when they outlive the wait, so the group can be removed by hand."""
        for _ in range(300):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # busy: its processes are still exiting
                time.sleep(0.1)
        print(f"cgroup {self.path} still has processes; remove it with rmdir once they exit", file=sys.stderr)
