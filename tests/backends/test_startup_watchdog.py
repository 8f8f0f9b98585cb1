"""A starting replica fails only when it stops making progress, with the phase that stalled named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tide.backends.base import ReplicaLaunch, ReplicaPhase
from tide.backends.local import LocalBackend, WeightsLease, WeightsUnavailable
from tide.spec import DeploymentSpec, InstanceTypeInfo, default_catalog, parse_deployment

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))
SPEC = parse_deployment(
    {"name": "tiny-chat", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}, CATALOG
)


class SlowWeights:
    """Reports progress every `step_s` for `steps` steps (0 steps: silent forever), then fails cleanly."""

    def __init__(self, steps: int, step_s: float) -> None:
        self.steps = steps
        self.step_s = step_s

    async def fetch(self, spec: DeploymentSpec, on_progress: Callable[[dict[str, Any]], None]) -> WeightsLease:
        if self.steps == 0:
            await asyncio.sleep(3600)
        for i in range(self.steps):
            await asyncio.sleep(self.step_s)
            on_progress({"percent": 100.0 * (i + 1) / self.steps, "bytesDone": i + 1, "bytesTotal": self.steps})
        raise WeightsUnavailable("weights path models/tiny has no config.json")


async def run_until_terminal(backend: LocalBackend, timeout: float) -> tuple[ReplicaPhase, str]:
    state = await backend.start(ReplicaLaunch("tiny-chat", "tiny-chat-1", SPEC))
    async with asyncio.timeout(timeout):
        while not state.phase.terminal:
            await asyncio.sleep(0.05)
    await backend.close()
    return state.phase, state.message


def test_a_silent_download_fails_naming_the_phase(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path, SlowWeights(steps=0, step_s=0), startup_stall_s=1.0)
    phase, message = asyncio.run(run_until_terminal(backend, timeout=10))
    assert phase is ReplicaPhase.FAILED
    assert "stalled in phase downloading_weights" in message


def test_a_slow_download_that_makes_progress_is_not_killed(tmp_path: Path) -> None:
    # 3 s of download with progress every 0.4 s: longer than the 1 s stall limit, but never silent.
    backend = LocalBackend(tmp_path, SlowWeights(steps=8, step_s=0.4), startup_stall_s=1.0)
    phase, message = asyncio.run(run_until_terminal(backend, timeout=15))
    assert phase is ReplicaPhase.FAILED
    assert "stalled" not in message and "no config.json" in message
