"""A backend for controller tests that records starts and runs nothing (only the controller's decisions are
under test): it implements `tide.backends.base.Backend` with no replica ever reported."""

from __future__ import annotations

from collections.abc import Mapping

from tide.backends.base import ReplicaLaunch, ReplicaListener, ReplicaState
from tide.backends.logfiles import LogText


class RecordingBackend:
    def __init__(self) -> None:
        self.started: list[str] = []  # deployment ids, one per replica start asked

    async def park(self, replica_id: str, level: int) -> bool:
        return False  # as an engine that cannot park: the controller stops the replica instead

    async def wake(self, replica_id: str) -> bool:
        return False

    def set_listener(self, listener: ReplicaListener) -> None:
        pass

    async def start(self, launch: ReplicaLaunch) -> ReplicaState:
        self.started.append(launch.deployment_id)
        return ReplicaState.for_launch(launch, "", 0.0)

    async def stop(self, replica_id: str, grace_s: float) -> None:
        pass

    def replicas(self) -> list[ReplicaState]:
        return []

    def forget(self, replica_id: str) -> None:
        pass

    def logs(self, deployment_id: str, tail_lines: int, after: Mapping[str, int] | None = None) -> dict[str, LogText]:
        return {}

    async def close(self) -> None:
        pass
