"""A replica process sees the runtime settings it needs and none of the control plane's secrets."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until_async
from tide.backends import local
from tide.backends.base import ReplicaLaunch
from tide.backends.local import LocalBackend, WeightsLease
from tide.engines.adapter import GpuId, LaunchPlan
from tide.spec import DeploymentSpec, InstanceTypeInfo, default_catalog, parse_deployment

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))
SPEC = parse_deployment(
    {"name": "tiny-chat", "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}, CATALOG
)
# The engine stand-in prints its whole environment to stderr (the replica log) and exits.
DUMP_ENV = "import json, os, sys; sys.stderr.write('ENV ' + json.dumps(dict(os.environ)) + '\\n')"


class EnvDumpEngine:
    name = "builtin"

    def plan(
        self,
        *,
        model_dir: Path,
        host: str,
        port: int,
        served_name: str,
        engine_config: Mapping[str, str],
        gpu_ids: Sequence[GpuId],
    ) -> LaunchPlan:
        return LaunchPlan(argv=(sys.executable, "-c", DUMP_ENV), env={"HF_HUB_OFFLINE": "1"})


class LocalDirWeights:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def fetch(self, spec: DeploymentSpec, on_progress: Callable[[dict[str, Any]], None]) -> WeightsLease:
        return WeightsLease(self.path, lambda: None)


async def run_to_the_end(tmp_path: Path) -> Path:
    """Start one replica of the env-dumping engine, wait until it has exited; its log's path."""
    backend = LocalBackend(tmp_path, LocalDirWeights(tmp_path))
    state = await backend.start(ReplicaLaunch("tiny-chat", "tiny-chat-1", SPEC))
    await wait_until_async(lambda: state.phase.terminal, 30, "the env-dumping replica to exit", poll=0.05)
    await backend.close()
    return Path(state.log_path or "")


def test_a_replica_gets_no_control_plane_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "TIDE_API_TOKEN": "tide_secret",
        "TIDE_GATEWAY_API_KEYS": "sk-gateway",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "HF_TOKEN": "hf_secret",
    }
    # PYTHONPATH as a developer's checkout may set it (the repository root is harmless to add).
    python_path = os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parents[2])
    runtime = {"HF_HOME": "/tmp/hf", "LC_ALL": "C.UTF-8", "CUDA_HOME": "/cuda", "PYTHONPATH": python_path}
    for name, value in {**secrets, **runtime}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(local, "adapter_for", lambda engine: EnvDumpEngine())

    log = asyncio.run(run_to_the_end(tmp_path)).read_text()
    env = json.loads(next(line for line in log.splitlines() if line.startswith("ENV "))[4:])
    assert not set(secrets) & set(env), f"secrets visible to the replica: {sorted(set(secrets) & set(env))}"
    assert not any(value in json.dumps(env) for value in secrets.values())
    # What engines need to run stays: the interpreter's path, hub/cache dirs, locale, CUDA settings.
    for name in ("PATH", "HF_HOME", "LC_ALL", "CUDA_HOME", "HF_HUB_OFFLINE", "PYTHONUNBUFFERED"):
        assert name in env, name
    assert env["PYTHONPATH"] == python_path


def test_replica_logs_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "adapter_for", lambda engine: EnvDumpEngine())

    log = asyncio.run(run_to_the_end(tmp_path))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.parent.parent.stat().st_mode) == 0o700
