"""The small contract every backend implements: start, stop and report replicas. No decisions here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from tide.backends.logfiles import LogText
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
        """Move to `phase` with `message`; `phase_times` records when a new phase began."""
        if self.phase != phase:
            self.phase_times[phase.value] = now
        self.phase = phase
        self.message = message

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
