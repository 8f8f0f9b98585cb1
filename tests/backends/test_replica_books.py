"""The replica bookkeeping every backend shares (tide/backends/base.py `ReplicaBooks`), run against each
backend: the local one, and the Ray one without a cluster (a replica placed on a node the cluster does not
have ends at once, before any actor). How a replica ended survives a stop, stopped or forgotten replicas
leave the books, logs are found where the state says, and a replica's URL lives exactly while it serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from tests.support.waiting import wait_until_async
from tide.backends.base import ReplicaBooks, ReplicaLaunch, ReplicaPhase, ReplicaState
from tide.backends.local import LocalBackend, WeightsLease, WeightsUnavailable
from tide.spec import DeploymentSpec, InstanceTypeInfo, default_catalog, parse_deployment

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))
SPEC = parse_deployment(
    {"name": "tiny-chat", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}, CATALOG
)
LAUNCH = ReplicaLaunch("tiny-chat", "tiny-chat-1", SPEC, instance_id="node-gone")


class MissingWeights:
    async def fetch(self, spec: DeploymentSpec, on_progress: Callable[[dict[str, Any]], None]) -> WeightsLease:
        raise WeightsUnavailable("weights path models/tiny has no config.json")


class EmptyCluster:
    """A Ray inventory with no nodes."""

    def alive(self, node_id: str) -> bool:
        return False

    def describe(self, node_id: str) -> str:
        return f"node {node_id}"

    def close(self) -> None:
        pass


@asynccontextmanager
async def backend(kind: str, data_dir: Path) -> AsyncIterator[Any]:
    """A backend whose replicas end by themselves (failed: no weights; crashed: no such node)."""
    books: Any
    if kind == "local":
        books = LocalBackend(data_dir, MissingWeights())
    else:
        from tide.backends.ray.backend import RayBackend
        from tide.backends.ray.inventory import RayInventory
        from tide.weights import StorageConfig

        books = RayBackend(data_dir, StorageConfig(), cast(RayInventory, EmptyCluster()))
    assert ReplicaBooks in type(books).__mro__  # the shared books, not a copy of them
    try:
        yield books
    finally:
        if kind == "local":  # RayBackend.close also shuts Ray down, which this test never started
            await books.close()


async def ended(books: Any, heard: list[tuple[ReplicaPhase, str | None]]) -> ReplicaState:
    books.set_listener(lambda s: heard.append((s.phase, s.base_url)))
    state: ReplicaState = await books.start(LAUNCH)
    assert books.replicas() == [state]
    await wait_until_async(lambda: state.phase.terminal, 20.0, "the replica to end by itself")
    return state


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_stop_keeps_how_a_replica_ended_and_takes_it_off_the_books(kind: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        heard: list[tuple[ReplicaPhase, str | None]] = []
        async with backend(kind, tmp_path) as books:
            state = await ended(books, heard)
            how = state.phase
            assert how in (ReplicaPhase.FAILED, ReplicaPhase.CRASHED) and state.message
            await books.stop(LAUNCH.replica_id, grace_s=1.0)
            assert state.phase is how  # not overwritten by "stopped": the status says why it ended
            assert books.replicas() == []
            assert heard[-1] == (how, None) and "url" not in state.to_status()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_forget_drops_an_ended_replica_and_its_log_stays_readable(kind: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with backend(kind, tmp_path) as books:
            state = await ended(books, [])
            assert state.log_path == str(tmp_path / "logs" / "tiny-chat" / "tiny-chat-1.log")
            Path(state.log_path).parent.mkdir(parents=True, exist_ok=True)
            Path(state.log_path).write_text("engine said goodbye\n")
            books.forget(LAUNCH.replica_id)
            assert books.replicas() == []
            assert "engine said goodbye" in books.logs("tiny-chat", 10)["tiny-chat-1"].text

    asyncio.run(scenario())


def test_a_replica_keeps_its_url_while_it_serves_drains_or_parks_and_loses_it_otherwise() -> None:
    state = ReplicaState.for_launch(LAUNCH, "/dev/null", 0.0)
    url = "http://127.0.0.1:9000/v1"
    for phase in ReplicaPhase:
        state.base_url = url
        state.enter(phase, "", 1.0)
        kept = phase in (ReplicaPhase.READY, ReplicaPhase.DRAINING, ReplicaPhase.PARKING)
        assert state.base_url == (url if kept else None), phase
