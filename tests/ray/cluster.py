"""A real Ray cluster of several nodes on this machine: `ray start --head` plus worker nodes, each its own
`ray start --block` process group with its own temp dir, labels or resources, virtual GPUs and Tide node
directory (its weights cache). Every wait is bounded; `stop()` leaves no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# Node death noticed in about 1.5 s instead of Ray's default 15 s or more (docs/RAY.md).
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}
OBJECT_STORE_BYTES = 100 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayNode:
    name: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    node_dir: Path  # TIDE_NODE_DIR: this node's weights cache and replica logs
    log: Path

    def cached_weights(self) -> list[str]:
        entries = self.node_dir / "cache" / "entries"
        return sorted(p.name for p in entries.iterdir() if p.is_dir()) if entries.is_dir() else []


@dataclass
class LocalRayCluster:
    # Short: Ray's Unix socket paths live under the temp dir and must stay under 107 characters.
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tray", dir="/tmp")))
    port: int = field(default_factory=free_port)
    nodes: dict[str, RayNode] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_node(
        self,
        name: str,
        *,
        gpus: int,
        labels: dict[str, str] | None = None,
        resources: dict[str, float] | None = None,
        head: bool = False,
    ) -> RayNode:
        temp_dir = self.root / name
        node_dir = self.root / "tide" / name
        node_dir.mkdir(parents=True)
        argv = [RAY, "start", "--block", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
        argv += ["--num-cpus=1", f"--num-gpus={gpus}", f"--object-store-memory={OBJECT_STORE_BYTES}"]
        if head:
            argv += ["--head", f"--port={self.port}", "--include-dashboard=false"]
            argv += [f"--system-config={json.dumps(FAST_HEALTH_CHECKS)}"]
        else:
            argv += [f"--address={self.address}"]
        if labels:
            argv += ["--labels=" + ",".join(f"{k}={v}" for k, v in labels.items())]
        if resources:
            argv += [f"--resources={json.dumps(resources)}"]
        log = self.root / f"{name}.log"
        env = {**os.environ, "TIDE_NODE_DIR": str(node_dir), "RAY_USAGE_STATS_ENABLED": "0"}
        with log.open("ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        node = RayNode(name, process, temp_dir, node_dir, log)
        self.nodes[name] = node
        return node

    def wait_for_nodes(self, count: int, timeout: float = 90) -> None:
        """Until `count` nodes are alive, as the GCS sees them (one short-lived driver polls `ray.nodes()`)."""
        probe = (
            "import ray, sys, time\n"
            f"ray.init(address={self.address!r}, logging_level='error', log_to_driver=False)\n"
            f"deadline = time.monotonic() + {timeout}\n"
            "while True:\n"
            "    alive = sum(1 for n in ray.nodes() if n['Alive'])\n"
            f"    if alive == {count} or time.monotonic() > deadline:\n"
            "        break\n"
            "    time.sleep(0.25)\n"
            "print(alive)\n"
        )
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        with subprocess.Popen(
            [sys.executable, "-c", probe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        ) as prober:
            deadline = time.monotonic() + timeout + 30
            while prober.poll() is None:
                dead = [n.name for n in self.nodes.values() if n.process.poll() is not None]
                if dead or time.monotonic() > deadline:
                    prober.kill()
                    prober.wait()
                    raise AssertionError(f"ray nodes {dead or 'unreachable'} at {self.address}:\n{self.logs()}")
                time.sleep(0.2)
            out, err = prober.communicate()
        alive = out.strip().splitlines()[-1] if out.strip() else f"? ({err[-1500:]})"
        assert alive == str(count), f"the Ray cluster has {alive} nodes alive, not {count}:\n{self.logs()}"

    def available_gpus(self) -> dict[str, float]:
        """Each alive node's GPUs that no Ray actor holds, by node name (Ray's books, read by a short-lived
        driver)."""
        probe = (
            "import json, ray\n"
            "from ray._private.state import available_resources_per_node\n"
            f"ray.init(address={self.address!r}, logging_level='error', log_to_driver=False)\n"
            "dirs = {n['NodeID']: n['ObjectStoreSocketName'] for n in ray.nodes() if n['Alive']}\n"
            "free = available_resources_per_node()\n"
            "print(json.dumps({dirs[i]: r.get('GPU', 0.0) for i, r in free.items() if i in dirs}))\n"
        )
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        by_socket: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
        return {
            name: gpus
            for socket_name, gpus in by_socket.items()
            for name, node in self.nodes.items()
            if socket_name.startswith(str(node.temp_dir))
        }

    def kill(self, name: str) -> None:
        """The node dies as a machine would: its raylet and everything in its group, SIGKILL, no goodbye."""
        node = self.nodes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=30)

    def stop(self) -> None:
        """Every node at once, SIGKILL (a test cluster has nothing to save), then any process still naming
        this cluster's root (Ray workers and the engines they started run in their own process groups);
        then the root itself."""
        for node in self.nodes.values():
            if node.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
        for node in self.nodes.values():
            node.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while (leftovers := self._leftovers()) and time.monotonic() < deadline:
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        time.sleep(0.5)  # the killed ones' last writes land before the directory goes
        shutil.rmtree(self.root, ignore_errors=True)

    def _leftovers(self) -> list[int]:
        marker = str(self.root).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
        return found

    def logs(self) -> str:
        return "\n".join(
            f"--- {node.name}\n{node.log.read_text(errors='replace')[-1500:]}"
            for node in self.nodes.values()
            if node.log.exists()
        )
