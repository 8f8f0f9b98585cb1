"""The replica host: a Ray actor on the chosen node that runs one replica with the local backend.

Everything a replica does on a node is what the local backend does on this machine, so it is reused
as is: weights into the node's cache (`CachedWeights` over `WeightsCache`), the engine's launch plan, its
`TIDE_EVENT` readiness, the stall watchdog, SIGTERM drain then SIGKILL, and the engine dying with its
parent (here: the actor's worker process, which dies with its node or with Tide's driver). The engine
serves on the node's address, so the gateway reaches it directly.

Tide watches the host with `watch(version, log_offset)`: a long poll that answers at once when the
replica changed (phase, progress, readiness) and otherwise after `wait_s`, with the log bytes written since
`log_offset`, so `tide logs` works (and keeps the logs after the node is gone).

Node-side settings come from the environment of `ray start` on that node (workers inherit it):
`TIDE_NODE_DIR` (default `~/.tide/ray-node`) holds the weights cache (`cache/`) and replica logs (`logs/`);
`TIDE_NODE_CACHE_BUDGET_GB` caps the cache.

A host can also be a *spare* (the Ray backend's warm pool, `spare()`): created ahead of need with no GPUs,
it runs a local backend whose warm pool holds one engine process with the runtime imported. A replica
start then hands it the GPUs another actor reserved in Ray's books (`GpuHold`), and its pooled process
becomes the replica's engine: only the weights are left to load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tide.backends.base import ReplicaLaunch, ReplicaPhase, ReplicaState
from tide.backends.local import LocalBackend
from tide.backends.node_weights import CachedWeights
from tide.engines.adapter import GpuId
from tide.weights import StorageConfig, WeightsCache

NODE_DIR_ENV = "TIDE_NODE_DIR"
CACHE_BUDGET_ENV = "TIDE_NODE_CACHE_BUDGET_GB"
LOG_CHUNK_BYTES = 256 * 1024


def gpu_id(assigned: object) -> GpuId:
    """Ray's GPU id as CUDA_VISIBLE_DEVICES takes it: an index stays an int; a UUID ("GPU-...", "MIG-...")
    stays as it is."""
    text = str(assigned).strip()
    return int(text) if text.isdigit() else text


@dataclass(frozen=True)
class HostInfo:
    """Where the replica actually runs, as the node itself reports it."""

    node_id: str
    address: str
    gpu_ids: tuple[GpuId, ...]  # what Ray assigned
    real_gpus: bool  # False: virtual GPUs (`ray start --num-gpus` on a machine without NVIDIA GPUs)
    node_dir: str


@dataclass(frozen=True)
class Snapshot:
    version: int
    phase: ReplicaPhase
    message: str
    progress: dict[str, Any] | None
    base_url: str | None
    exit_code: int | None
    pid: int | None
    phase_times: dict[str, float]
    log: bytes = b""
    log_offset: int = 0  # where the next watch should continue the log


def node_dir() -> Path:
    return Path(os.environ.get(NODE_DIR_ENV) or "~/.tide/ray-node").expanduser()


def has_real_gpus() -> bool:
    """NVIDIA GPUs on this node (the driver lists them); virtual GPUs only exist in Ray's books."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


class ReplicaHost:
    """Runs on the node Tide chose (the actor is pinned to it). One replica per host."""

    def __init__(self, storage: StorageConfig) -> None:
        self._storage = storage
        self._local: LocalBackend | None = None
        self._state: ReplicaState | None = None
        self._version = 0
        self._changed: asyncio.Event | None = None

    def _backend(self, warm_pool: int) -> LocalBackend:
        if self._local is None:
            import ray

            directory = node_dir()
            budget = os.environ.get(CACHE_BUDGET_ENV)
            cache = WeightsCache(directory / "cache", budget_bytes=int(float(budget) * 1e9) if budget else None)
            address = ray.util.get_node_ip_address()
            self._local = LocalBackend(
                directory, CachedWeights(self._storage, cache), host=address, warm_pool=warm_pool
            )
            self._local.set_listener(self._on_change)
        return self._local

    async def spare(self) -> int:
        """Become a spare: start the warm pool's one engine process; its pid once it is warm (imports done).
        The local pool restarts it, with a back-off, if it dies first."""
        local = self._backend(warm_pool=1)
        local.start_warm_pool()
        (pool,) = local.warm_pools
        while not pool.warm_pids:
            await asyncio.sleep(0.05)
        return pool.warm_pids[0]

    async def until_gone(self) -> None:
        """Answers never: the Ray backend's warm pool awaits it to learn that this spare's actor died."""
        await asyncio.Event().wait()

    async def start(self, launch: ReplicaLaunch, reserved_gpus: tuple[GpuId, ...] | None = None) -> HostInfo:
        """Run the replica. `reserved_gpus`: a spare's start, with the GPUs a `GpuHold` got from Ray (this
        actor holds none); otherwise the ones Ray assigned to this actor."""
        import ray  # on the node, inside the actor

        context = ray.get_runtime_context()
        assigned = tuple(gpu_id(i) for i in ray.get_gpu_ids()) if reserved_gpus is None else reserved_gpus
        real = has_real_gpus()
        directory = node_dir()
        self._changed = asyncio.Event()
        local = self._backend(warm_pool=0)
        for pool in local.warm_pools:
            pool.stop_refilling()  # a spare becomes this replica's host: its one pooled process is all it needs
        # Real GPUs: the engine sees exactly the ones Ray assigned. Virtual ones: it runs on the CPU.
        self._state = await local.start(replace(launch, gpu_ids=assigned if real else ()))
        return HostInfo(
            node_id=context.get_node_id(),
            address=ray.util.get_node_ip_address(),
            gpu_ids=assigned,
            real_gpus=real,
            node_dir=str(directory),
        )

    def _on_change(self, state: ReplicaState) -> None:
        self._state = state
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def watch(self, version: int, log_offset: int, wait_s: float) -> Snapshot:
        """The replica's state once it differs from `version` (or after `wait_s`), with new log bytes."""
        changed = self._changed
        if self._version == version and changed is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=wait_s)
        return self._snapshot(log_offset)

    async def stop(self, grace_s: float, log_offset: int) -> Snapshot:
        """Drain (SIGTERM: the engine finishes in-flight requests), SIGKILL after `grace_s`; the final state."""
        if self._local is not None and self._state is not None:
            await self._local.stop(self._state.replica_id, grace_s)
        return self._snapshot(log_offset)

    def _snapshot(self, log_offset: int) -> Snapshot:
        state = self._state
        if state is None:
            return Snapshot(self._version, ReplicaPhase.WAITING_FOR_CAPACITY, "", None, None, None, None, {})
        log, next_offset = _read_log(state.log_path, log_offset)
        return Snapshot(
            version=self._version,
            phase=state.phase,
            message=state.message,
            progress=dict(state.progress) if state.progress is not None else None,
            base_url=state.base_url,
            exit_code=state.exit_code,
            pid=state.pid,
            phase_times=dict(state.phase_times),
            log=log,
            log_offset=next_offset,
        )


class GpuHold:
    """Holds GPUs in Ray's books for a replica that runs in a spare host (which holds none): created with
    `num_gpus`, pinned to the spare's node; it names the GPUs Ray assigned and holds them until killed."""

    def gpu_ids(self) -> tuple[GpuId, ...]:
        import ray

        return tuple(gpu_id(i) for i in ray.get_gpu_ids())


def _read_log(path: str | None, offset: int) -> tuple[bytes, int]:
    if not path:
        return b"", offset
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(LOG_CHUNK_BYTES)
    except OSError:
        return b"", offset
    return data, offset + len(data)
