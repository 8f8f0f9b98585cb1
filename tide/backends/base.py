"""The small contract every backend implements (start, stop and report replicas; no decisions here), and
the replica bookkeeping every backend shares (`ReplicaBooks`): one behaviour for phases, URLs, stops,
forgetting and logs, whichever backend runs the replica."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from tide.backends.logfiles import LogText, read_replica_logs
from tide.engines.adapter import GpuId
from tide.spec import DeploymentSpec


class ReplicaPhase(StrEnum):
    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    DOWNLOADING_WEIGHTS = "downloading_weights"
    ENGINE_LOAD = "engine_load"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"
    CRASHED = "crashed"  # exited on its own; the controller decides whether to restart
    FAILED = "failed"  # cannot start (bad weights, engine missing): restarting will not help
    LOST = "lost"  # the machine it ran on is gone: not the replica's fault, replace it at once
    # Parking: the process stays alive with its accelerator memory given back; waking serves again.
    PARKING = "parking"
    PARKED = "parked"
    WAKING = "waking"

    @property
    def starting(self) -> bool:
        return self in (ReplicaPhase.WAITING_FOR_CAPACITY, ReplicaPhase.DOWNLOADING_WEIGHTS, ReplicaPhase.ENGINE_LOAD)

    @property
    def resting(self) -> bool:
        """Parking or parked: alive, serving nobody, holding no accelerator."""
        return self in (ReplicaPhase.PARKING, ReplicaPhase.PARKED)

    @property
    def terminal(self) -> bool:
        return self in (ReplicaPhase.STOPPED, ReplicaPhase.CRASHED, ReplicaPhase.FAILED, ReplicaPhase.LOST)

    @property
    def keeps_url(self) -> bool:
        """Phases in which a replica keeps its URL: serving (ready), finishing what it serves (draining), or
        being parked (its engine still answers). Any other phase clears it: it is set again at ready."""
        return self in (ReplicaPhase.READY, ReplicaPhase.DRAINING, ReplicaPhase.PARKING)


@dataclass(frozen=True)
class ReplicaLaunch:
    deployment_id: str
    replica_id: str
    spec: DeploymentSpec
    gpu_ids: tuple[GpuId, ...] = ()
    instance_id: str | None = None  # where the scheduler placed it (a Ray backend: the node id)


@dataclass
class ReplicaState:
    deployment_id: str
    replica_id: str
    template: tuple[object, ...]
    phase: ReplicaPhase = ReplicaPhase.WAITING_FOR_CAPACITY
    base_url: str | None = None
    message: str = ""
    progress: dict[str, Any] | None = None
    phase_times: dict[str, float] = field(default_factory=dict)  # phase -> when it began
    exit_code: int | None = None
    pid: int | None = None
    log_path: str | None = None
    host_bytes: int = 0  # host memory a parked replica holds (its weights at park level 1; 0 otherwise)

    @classmethod
    def for_launch(cls, launch: ReplicaLaunch, log_path: str, now: float) -> ReplicaState:
        """A replica about to start: waiting for capacity since `now`, logging to `log_path`."""
        state = cls(
            deployment_id=launch.deployment_id,
            replica_id=launch.replica_id,
            template=launch.spec.replica_template(),
            log_path=log_path,
        )
        state.phase_times[ReplicaPhase.WAITING_FOR_CAPACITY.value] = now
        return state

    def enter(self, phase: ReplicaPhase, message: str, now: float) -> None:
        """Move to `phase` with `message`; `phase_times` records when a new phase began. A phase that does
        not keep the URL (`ReplicaPhase.keeps_url`) clears it."""
        if self.phase != phase:
            self.phase_times[phase.value] = now
        self.phase = phase
        self.message = message
        if not phase.keeps_url:
            self.base_url = None

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.replica_id,
            "phase": self.phase.value,
            "phaseTimes": dict(self.phase_times),
        }
        if self.base_url:
            out["url"] = self.base_url
        if self.message:
            out["message"] = self.message
        if self.progress is not None:
            out["progress"] = self.progress
        if self.exit_code is not None:
            out["exitCode"] = self.exit_code
        if self.host_bytes:
            out["hostMemoryBytes"] = self.host_bytes
        if self.pid is not None and not self.phase.terminal:
            out["pid"] = self.pid
        return out


ReplicaListener = Callable[[ReplicaState], None]


class Backend(Protocol):
    def set_listener(self, listener: ReplicaListener) -> None: ...

    async def start(self, launch: ReplicaLaunch) -> ReplicaState:
        """Begin starting a replica; returns at once. Phase changes reach the listener."""
        ...

    async def stop(self, replica_id: str, grace_s: float) -> None:
        """Stop a replica: SIGTERM-style drain, then force after `grace_s`. Returns when it has exited."""
        ...

    def replicas(self) -> list[ReplicaState]: ...

    def forget(self, replica_id: str) -> None:
        """Drop a replica that already exited (crashed or failed) from the backend's books."""
        ...

    async def park(self, replica_id: str, level: int) -> bool:
        """Park a ready replica (phases parking -> parked). False: its engine cannot park here, or the
        park failed and the replica is back to ready; the caller stops it instead."""
        ...

    async def wake(self, replica_id: str) -> bool:
        """Wake a parked replica (waking -> ready). False: it could not wake; the caller stops it."""
        ...

    def logs(self, deployment_id: str, tail_lines: int, after: Mapping[str, int] | None = None) -> dict[str, LogText]:
        """Replica logs: the last `tail_lines` lines each, or with `after` what each wrote past its offset
        (tide.backends.logfiles.read_replica_logs)."""
        ...

    async def close(self) -> None: ...


@dataclass
class TrackedReplica:
    """What every backend keeps of a replica it started (backends add their own fields)."""

    state: ReplicaState
    task: asyncio.Task[None] | None = None  # the backend's task that starts and follows the replica
    stopping: bool = False  # `stop` was called: its end is a stop, not a crash


TrackedT = TypeVar("TrackedT", bound=TrackedReplica)


class ReplicaBooks(Generic[TrackedT]):
    """The replica bookkeeping every backend shares: the replicas it holds, the listener that hears every
    phase change, where each replica's log is, how a stop ends and what forgetting does. Subclasses start
    and stop replicas (`start`, `stop`) and release what a replica held (`_forgotten`)."""

    def __init__(self, data_dir: Path) -> None:
        self._logs_dir = data_dir / "logs"
        self._replicas: dict[str, TrackedT] = {}
        self._listener: ReplicaListener = lambda _state: None

    def set_listener(self, listener: ReplicaListener) -> None:
        self._listener = listener

    def replicas(self) -> list[ReplicaState]:
        return [r.state for r in self._replicas.values()]

    def _log_path(self, launch: ReplicaLaunch) -> Path:
        return self._logs_dir / launch.deployment_id / f"{launch.replica_id}.log"

    def _new_state(self, launch: ReplicaLaunch) -> ReplicaState:
        """The state of a replica about to start: waiting for capacity from now, logging to
        `<data dir>/logs/<deployment>/<replica>.log`."""
        return ReplicaState.for_launch(launch, str(self._log_path(launch)), time.time())

    def _set_phase(self, replica: TrackedT, phase: ReplicaPhase, message: str = "") -> None:
        replica.state.enter(phase, message, time.time())
        self._listener(replica.state)

    async def _finish_stop(self, replica_id: str, replica: TrackedT, cancel_task: bool) -> None:
        """The end of `stop`, once the replica's process or actor was told to go: wait for the backend's
        task that follows it (cancelled first when `cancel_task`), release what it held (`_forgotten`).
        A replica that had already ended keeps the phase that says how (crashed, failed, lost); any other
        is now stopped. Either way it leaves the books."""
        task = replica.task
        if task is not None and not task.done():
            if cancel_task:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._forgotten(replica)
        if not replica.state.phase.terminal:
            self._set_phase(replica, ReplicaPhase.STOPPED)
        self._replicas.pop(replica_id, None)

    def forget(self, replica_id: str) -> None:
        """Drop a replica that already exited (crashed or failed) from the backend's books."""
        replica = self._replicas.pop(replica_id, None)
        if replica is None:
            return
        if replica.task is not None and not replica.task.done():
            replica.task.cancel()
        self._forgotten(replica)

    def _forgotten(self, replica: TrackedT) -> None:
        """Release what a forgotten replica still holds (weights, an actor); nothing by default."""

    async def stop(self, replica_id: str, grace_s: float) -> None:
        raise NotImplementedError

    async def _stop_all(self, grace_s: float = 5.0) -> None:
        await asyncio.gather(*(self.stop(rid, grace_s=grace_s) for rid in list(self._replicas)), return_exceptions=True)

    def logs(self, deployment_id: str, tail_lines: int, after: Mapping[str, int] | None = None) -> dict[str, LogText]:
        return read_replica_logs(self._logs_dir, deployment_id, tail_lines, after)
