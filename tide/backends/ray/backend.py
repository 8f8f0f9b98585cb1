"""The Ray backend: each replica is a Ray actor (`ReplicaHost`) pinned to the node the scheduler chose.

The contract is the local backend's (`tide.backends.base.Backend`); only where the replica runs differs.
`start` creates the actor on the placement's node (`NodeAffinitySchedulingStrategy(soft=False)`) with
`num_gpus=gpuCount`, so Ray assigns it that node's GPUs; the actor runs the replica there with the local
backend (weights into that node's cache, the engine on the node's address). This side mirrors the
actor's state with a long poll (`watch`), copies the replica's log into the data directory, and turns
the actor's death into a LOST replica ("node <id> (<zone>, <type>) was lost") when its node is gone, so
the controller replaces it on another node that fits at once (a ReplicaLost condition, no crash backoff),
and into a CRASHED one otherwise.

With a warm pool (`warm_pool` > 0, `tide up --warm-pool N`), each node keeps N spare hosts
(`tide.backends.ray.spares`). A built-in engine replica on a node with a ready spare runs in it: its GPUs
are reserved by a `GpuHold` actor pinned to the node (so Ray's books stay exact and no two engines share
a GPU), and the spare's warm engine process becomes the replica's engine. Stopping the replica ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tide.backends.base import ReplicaBooks, ReplicaLaunch, ReplicaPhase, ReplicaState, TrackedReplica
from tide.backends.logfiles import open_private_log
from tide.backends.ray.actor import LOG_CHUNK_BYTES, GpuHold, HostInfo, ReplicaHost, Snapshot
from tide.backends.ray.inventory import RayInventory
from tide.backends.ray.spares import RaySpares, Spare, await_ref
from tide.timing import RAY_PLACEMENT_TIMEOUT_S, RAY_STOP_EXTRA_S, RAY_UNAVAILABLE_RETRY_S, RAY_WATCH_S
from tide.weights import StorageConfig

# Where the scheduler placed a replica: the inventory instance id, which is the Ray node id.


@dataclass
class _Replica(TrackedReplica):
    node_id: str | None = None
    actor: Any = None  # ray.actor.ActorHandle
    gpu_hold: Any = None  # the GpuHold actor of a replica that runs in a spare host
    host: HostInfo | None = None
    version: int = -1  # the actor's state version last applied
    log_offset: int = 0


class RayBackend(ReplicaBooks[_Replica]):
    def __init__(
        self,
        data_dir: Path,
        storage: StorageConfig,
        inventory: RayInventory,
        placement_timeout_s: float = RAY_PLACEMENT_TIMEOUT_S,
        watch_s: float = RAY_WATCH_S,
        warm_pool: int = 0,
    ) -> None:
        super().__init__(data_dir)
        self._storage = storage
        self._inventory = inventory
        self._placement_timeout_s = placement_timeout_s
        self._watch_s = watch_s
        self._host_class = ray.remote(ReplicaHost)
        self._hold_class = ray.remote(GpuHold)
        self.spares = RaySpares(warm_pool, inventory, self._create_spare)

    def _pinned(self, node_id: str, name: str, gpus: int) -> dict[str, Any]:
        return {
            "name": name,
            "num_cpus": 0,
            "num_gpus": gpus,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            "max_restarts": 0,
        }

    def _create_spare(self, node_id: str, name: str) -> Any:
        return self._host_class.options(**self._pinned(node_id, name, 0)).remote(self._storage)

    def start_warm_pool(self) -> None:
        """Begin keeping spares on every node (needs the running event loop)."""
        self.spares.start()

    @property
    def warm_pools(self) -> list[RaySpares]:
        return [self.spares] if self.spares.size else []

    async def start(self, launch: ReplicaLaunch) -> ReplicaState:
        state = self._new_state(launch)
        replica = _Replica(state=state, node_id=launch.instance_id)
        self._replicas[launch.replica_id] = replica
        replica.task = asyncio.create_task(self._run(replica, launch), name=f"ray-replica-{launch.replica_id}")
        return state

    async def _run(self, replica: _Replica, launch: ReplicaLaunch) -> None:
        node_id = replica.node_id
        if node_id is None or not self._inventory.alive(node_id):
            where = self._inventory.describe(node_id) if node_id else "no node"
            self._set_phase(replica, ReplicaPhase.CRASHED, f"placed on {where}, which is not in the Ray cluster")
            return
        where = self._inventory.describe(node_id)
        try:
            gpus = launch.spec.resources.gpu_count
            # Spares hold a warm built-in engine process; another engine would leave it idle in the replica.
            spare = self.spares.take(node_id) if launch.spec.runtime.engine == "builtin" else None
            if spare is None:
                self._set_phase(replica, ReplicaPhase.WAITING_FOR_CAPACITY, f"starting a Ray actor on {where}")
                replica.actor = self._host_class.options(
                    **self._pinned(node_id, f"tide-replica-{launch.replica_id}", gpus)
                ).remote(self._storage)
            else:
                self._set_phase(replica, ReplicaPhase.WAITING_FOR_CAPACITY, f"starting in a spare host on {where}")
                replica.actor = spare.actor
            try:
                host = await asyncio.wait_for(self._place(replica, launch, spare), self._placement_timeout_s)
            except TimeoutError:
                self._kill(replica)
                self._set_phase(
                    replica,
                    ReplicaPhase.CRASHED,
                    f"Ray did not start the replica on {where} within {self._placement_timeout_s:.0f}s "
                    f"(are its {launch.spec.resources.gpu_count} GPUs held by other Ray work?)",
                )
                return
            replica.host = host
            await self._follow(replica)
        except RayTaskError as exc:  # the host raised: not worth a retry on this node or any other
            if not replica.stopping:
                self._kill(replica)
                self._set_phase(replica, ReplicaPhase.FAILED, f"could not start on {where}: {_first_line(exc)}")
        except RayError as exc:  # the actor died, or could not be placed: its node is the usual suspect
            if not replica.stopping:
                self._kill(replica)
                await asyncio.to_thread(self._refresh_inventory)
                if not self._inventory.alive(node_id):
                    self._set_phase(replica, ReplicaPhase.LOST, f"{self._inventory.describe(node_id)} was lost")
                else:
                    message = f"the replica's Ray actor on {where} ended: {_first_line(exc)}"
                    self._set_phase(replica, ReplicaPhase.CRASHED, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: say it, never hang in a starting phase
            if not replica.stopping:
                self._kill(replica)
                self._set_phase(replica, ReplicaPhase.FAILED, f"could not start on {where}: {_first_line(exc)}")

    async def _place(self, replica: _Replica, launch: ReplicaLaunch, spare: Spare | None) -> HostInfo:
        """The replica started in its actor: a new one (Ray assigned it the GPUs), or a spare, given the GPUs
        its `GpuHold` got."""
        if spare is None:
            host: HostInfo = await await_ref(replica.actor.start.remote(launch))
            return host
        gpus = launch.spec.resources.gpu_count
        reserved: tuple[Any, ...] = ()
        if gpus:
            options = self._pinned(spare.node_id, f"tide-gpus-{launch.replica_id}", gpus)
            replica.gpu_hold = self._hold_class.options(**options).remote()
            reserved = await await_ref(replica.gpu_hold.gpu_ids.remote())
        host = await await_ref(replica.actor.start.remote(launch, reserved))
        return host

    async def _follow(self, replica: _Replica) -> None:
        """Mirror the actor's replica until it ends (crashed, failed, or stopped by `stop`)."""
        wait_s = self._watch_s
        while True:
            try:
                snapshot: Snapshot = await await_ref(
                    replica.actor.watch.remote(replica.version, replica.log_offset, wait_s)
                )
            except ActorUnavailableError:  # unreachable for now (a network blip); its death is reported apart
                await asyncio.sleep(RAY_UNAVAILABLE_RETRY_S)
                continue
            self._apply(replica, snapshot)
            if snapshot.phase.terminal:
                if len(snapshot.log) == 0:
                    break
                wait_s = 0.0  # fetch the rest of the log before the actor goes
                continue
            wait_s = 0.0 if len(snapshot.log) >= LOG_CHUNK_BYTES else self._watch_s
        if not replica.stopping:
            self._kill(replica)  # its GPUs go back to Ray now, not when the controller forgets it

    def _apply(self, replica: _Replica, snapshot: Snapshot) -> None:
        if snapshot.log:
            path = Path(replica.state.log_path or "")
            with open_private_log(path) as f:
                f.write(snapshot.log)
        replica.log_offset = snapshot.log_offset
        if snapshot.version == replica.version:
            return
        replica.version = snapshot.version
        state = replica.state
        phase = snapshot.phase
        if replica.stopping and phase is ReplicaPhase.READY:
            phase = ReplicaPhase.DRAINING  # out of rotation already; the node has not heard yet
        for name, at in snapshot.phase_times.items():
            state.phase_times.setdefault(name, at)
        state.phase = phase
        state.message = self._on_node(replica, snapshot.message)
        state.progress = snapshot.progress
        state.base_url = snapshot.base_url if phase.keeps_url else None  # as `ReplicaState.enter` does
        state.exit_code = snapshot.exit_code
        state.pid = snapshot.pid
        self._listener(state)

    def _on_node(self, replica: _Replica, message: str) -> str:
        host = replica.host
        if host is None:
            return message
        where = "on " + self._inventory.describe(host.node_id)
        if host.gpu_ids:
            gpus = ",".join(str(i) for i in host.gpu_ids)
            where += f", GPUs {gpus}" if host.real_gpus else f", virtual GPUs {gpus}"
        return f"{message} ({where})" if message else where

    def _refresh_inventory(self) -> None:
        with contextlib.suppress(Exception):
            self._inventory.refresh()

    def _kill(self, replica: _Replica) -> None:
        """End its actor, then the GpuHold (if any): the engine goes before its GPUs go back to Ray."""
        for actor in (replica.actor, replica.gpu_hold):
            if actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
        replica.actor = replica.gpu_hold = None

    async def stop(self, replica_id: str, grace_s: float) -> None:
        replica = self._replicas.get(replica_id)
        if replica is None:
            return
        replica.stopping = True
        if replica.state.phase is ReplicaPhase.READY:
            self._set_phase(replica, ReplicaPhase.DRAINING, "finishing in-flight requests")
        if replica.actor is not None and replica.host is not None and not replica.state.phase.terminal:
            try:
                snapshot = await asyncio.wait_for(
                    await_ref(replica.actor.stop.remote(grace_s, replica.log_offset)), grace_s + RAY_STOP_EXTRA_S
                )
                self._apply(replica, snapshot)
            except (RayError, TimeoutError):
                pass  # the actor or its node is gone: nothing left to drain
        await self._finish_stop(replica_id, replica, cancel_task=True)

    def _forgotten(self, replica: _Replica) -> None:
        self._kill(replica)

    async def park(self, replica_id: str, level: int) -> bool:
        """Not on Ray yet: a replica actor owns its node's GPUs until it ends, so it is stopped instead."""
        return False

    async def wake(self, replica_id: str) -> bool:
        return False

    async def close(self) -> None:
        await self.spares.close()
        await self._stop_all()
        self._inventory.close()
        ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
