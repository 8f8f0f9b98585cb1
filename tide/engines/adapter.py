"""Engine adapters: how to launch a replica of each engine and how to tell it is ready.

An adapter knows its command line, its environment, its health route and where its load gauges are; it makes no decisions and does
no I/O itself (the backend runs what it returns).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tide.engines.prometheus import BUILTIN_LOAD_METRICS, LoadMetricNames

# A GPU as CUDA_VISIBLE_DEVICES names it: an index, or a GPU/MIG UUID ("MIG-..."), which is what Ray
# reports on nodes whose own CUDA_VISIBLE_DEVICES lists UUIDs (e.g. MIG slices).
GpuId = int | str


@dataclass(frozen=True)
class LaunchPlan:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    health_path: str = "/health"
    # True when the engine prints `TIDE_EVENT {...}` lines (readiness is pushed, not polled).
    emits_events: bool = False
    # A command that starts a warm process of this engine (runtime imported, no model), which becomes
    # this replica when sent its order on stdin (tide.backends.warm_pool); None: no warm pool.
    pooled_command: tuple[str, ...] | None = None
    # Where the engine parks and wakes (POST {park_path}?level=1|2, POST {wake_path}), from the server's
    # root; never routed through the gateway. None: this engine cannot park here (it is stopped instead).
    park_path: str | None = None
    wake_path: str | None = None
    # How much nicer than Tide the engine runs (0-19; 0: as Tide). The backend applies it to the process and
    # to its session's scheduling group (Linux autogroup), where a per-process nice alone has no effect.
    niceness: int = 0

    @property
    def can_park(self) -> bool:
        return self.park_path is not None and self.wake_path is not None


class EngineAdapter(Protocol):
    name: str
    metrics_path: str  # from the server's root, not from its /v1 base URL
    load_metrics: LoadMetricNames

    def plan(
        self,
        *,
        model_dir: Path,
        host: str,
        port: int,
        served_name: str,
        engine_config: Mapping[str, str],
        gpu_ids: Sequence[GpuId],
    ) -> LaunchPlan: ...


class BuiltinEngine:
    """Tide's own torch + transformers engine (`python -m tide.engines.builtin`)."""

    name = "builtin"
    metrics_path = "/metrics"
    load_metrics = BUILTIN_LOAD_METRICS

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
        argv = [
            sys.executable,
            "-m",
            "tide.engines.builtin",
            "--model-dir",
            str(model_dir),
            "--host",
            host,
            "--port",
            str(port),
            "--served-model-name",
            served_name,
            "--device",
            "cuda" if gpu_ids else "cpu",
        ]
        if "dtype" in engine_config and engine_config["dtype"] != "auto":
            argv += ["--dtype", engine_config["dtype"]]
        if "max-batch-size" in engine_config:
            argv += ["--max-batch-size", engine_config["max-batch-size"]]
        if "max-model-len" in engine_config:
            argv += ["--max-model-len", engine_config["max-model-len"]]
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
        return LaunchPlan(
            argv=tuple(argv),
            env=env,
            emits_events=True,
            pooled_command=builtin_pooled_command(),
            park_path="/tide/park",
            wake_path="/tide/wake",
        )


def builtin_pooled_command() -> tuple[str, ...]:
    """The built-in engine's warm-pool entry (tide.engines.builtin.pooled)."""
    return (sys.executable, "-m", "tide.engines.builtin.pooled")


def adapter_for(engine: str) -> EngineAdapter:
    if engine == "builtin":
        return BuiltinEngine()
    if engine == "vllm":
        from tide.engines.vllm import VllmEngine  # here, not at the top: vllm.py imports LaunchPlan from us

        return VllmEngine()
    raise KeyError(f"engine {engine!r} has no adapter on this node; known: builtin, vllm")
