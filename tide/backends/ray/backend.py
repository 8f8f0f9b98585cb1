"""The Ray backend: each replica is a Ray actor (`ReplicaHost`) pinned to the node the scheduler chose.

The contract is the local backend's (`tide.backends.base.Backend`); only where the replica runs differs.
`start` creates the actor on the placement's node (`NodeAffinitySchedulingStrategy(soft=False)`) with
`num_gpus=gpuCount`, so Ray assigns it that node's GPUs; the actor runs the replica there with the local
backend (weights into that node's cache, the engine on the node's address). This side mirrors the
actor's state with a long poll (`watch`), copies the replica's log into the data directory, and turns
the actor's death into a LOST replica ("node <id> (<zone>, <type>) was lost") when its node is gone, so
the controller replaces it on another node that fits at once (a ReplicaLost condition, no crash backoff),
and into a CRASHED one otherwise.
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
from tide.backends.ray.actor import LOG_CHUNK_BYTES, HostInfo, ReplicaHost, Snapshot
from tide.backends.ray.inventory import RayInventory
from tide.timing import RAY_PLACEMENT_TIMEOUT_S, RAY_STOP_EXTRA_S, RAY_UNAVAILABLE_RETRY_S, RAY_WATCH_S
from tide.weights import StorageConfig

# Where the scheduler placed a replica: the inventory instance id, which is the Ray node id.


@dataclass
class _Replica(TrackedReplica):
    node_id: str | None = None
    actor: Any = None  # ray.actor.ActorHandle
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
    ) -> None:
        super().__init__(data_dir)
        self._storage = storage
        self._inventory = inventory
        self._placement_timeout_s = placement_timeout_s
        self._watch_s = watch_s
        self._host_class = ray.remote(ReplicaHost)

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
            self._set_phase(replica, ReplicaPhase.WAITING_FOR_CAPACITY, f"starting a Ray actor on {where}")
            replica.actor = self._host_class.options(
                name=f"tide-replica-{launch.replica_id}",
                num_cpus=0,
                num_gpus=launch.spec.resources.gpu_count,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
                max_restarts=0,
            ).remote(self._storage)
            try:
                host = await asyncio.wait_for(_result(replica.actor.start.remote(launch)), self._placement_timeout_s)
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

    async def _follow(self, replica: _Replica) -> None:
        """Mirror the actor's replica until it ends (crashed, failed, or stopped by `stop`)."""
        wait_s = self._watch_s
        while True:
            try:
                snapshot: Snapshot = await _result(
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
        actor, replica.actor = replica.actor, None
        if actor is not None:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)

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
                    _result(replica.actor.stop.remote(grace_s, replica.log_offset)), grace_s + RAY_STOP_EXTRA_S
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
        await self._stop_all()
        self._inventory.close()
        ray.shutdown()


async def _result(ref: Any) -> Any:
    """Await a Ray ObjectRef on any event loop (uvloop included)."""
    return await asyncio.wrap_future(ref.future())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
