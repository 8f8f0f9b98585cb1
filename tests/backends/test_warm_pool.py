"""The local backend's warm pool: a replica start takes a pre-started engine process, which then only
loads its weights; the pool refills (also when an idle one dies); closing the backend ends every pooled
process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.waiting import wait_until_async
from tide.backends.base import ReplicaLaunch, ReplicaPhase
from tide.backends.local import LocalBackend, WeightsLease
from tide.spec import DeploymentSpec, InstanceTypeInfo, default_catalog, parse_deployment

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))
SPEC = parse_deployment(
    {"name": "tiny-chat", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}, CATALOG
)


class DirWeights:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def fetch(self, spec: DeploymentSpec, on_progress: Callable[[dict[str, Any]], None]) -> WeightsLease:
        return WeightsLease(self.path, lambda: None)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_replica_start_takes_a_warm_process_and_the_pool_refills_and_closes(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    async def scenario() -> None:
        backend = LocalBackend(tmp_path, DirWeights(tiny_model_dir), warm_pool=1)
        backend.start_warm_pool()
        (pool,) = backend.warm_pools
        try:
            await wait_until_async(lambda: pool.warm_count == 1, 120, "a warm process")
            state = await backend.start(ReplicaLaunch("tiny-chat", "tiny-chat-1", SPEC))
            await wait_until_async(lambda: state.phase is ReplicaPhase.READY or state.phase.terminal, 60, "ready")
            assert state.phase is ReplicaPhase.READY, state.message
            assert pool.taken_total == 1 and pool.missed_total == 0
            log_text = Path(state.log_path or "").read_text()
            assert "from the warm pool" in log_text
            # It serves like any replica, and its stderr went to the replica's own log.
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.post(
                    f"{state.base_url}/completions", json={"model": "tiny-chat", "prompt": "hi", "max_tokens": 2}
                )
            assert response.status_code == 200, response.text
            assert "loaded" in Path(state.log_path or "").read_text()  # the engine's own log line
            # The pool refills in the background, and the replica is not one of its processes.
            await wait_until_async(lambda: pool.warm_count == 1, 120, "a refill")
            (refill,) = [p.process.pid for p in pool._idle]
            assert state.pid != refill
            # A pooled process that dies while idle (an OOM kill, say) is replaced too.
            os.kill(refill, 9)
            await wait_until_async(
                lambda: pool.warm_count == 1 and refill not in [p.process.pid for p in pool._idle], 120, ""
            )
        finally:
            pooled_pids = [p.process.pid for p in pool._idle]
            await backend.close()
        assert state.phase is ReplicaPhase.STOPPED
        assert pooled_pids and not any(alive(pid) for pid in pooled_pids)

    asyncio.run(scenario())
