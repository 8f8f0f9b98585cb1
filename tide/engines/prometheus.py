"""Load signals from a vLLM replica's `/metrics` (Prometheus text format); pure, no I/O.

vLLM exports, per engine (`engine="0"`, ...) and served model:

- `vllm:num_requests_running`: requests in the running batch;
- `vllm:num_requests_waiting`: requests queued for a slot;
- `vllm:kv_cache_usage_perc` (a fraction, 1 = full; vLLM >= 0.10), called `vllm:gpu_cache_usage_perc` before.

Running and waiting are summed over engines (data-parallel ranks); KV-cache usage is the fullest engine's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")  # newest name first

# name, optional {labels}, value, optional timestamp
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?\s+(?P<value>\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class VllmLoad:
    running: float
    waiting: float
    kv_cache_usage: float | None  # 0..1; None when the server does not export it

    @property
    def in_flight(self) -> float:
        return self.running + self.waiting


def _samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {m["key"]: m["value"] for m in _LABEL.finditer(match["labels"] or "")}
        yield match["name"], labels, value


def parse_vllm_load(text: str, model_name: str | None = None) -> VllmLoad:
    """The load of one vLLM server from its `/metrics` text.

    `model_name` keeps only the series of that served model (a server that serves several). Raises
    ValueError when the text has no `vllm:num_requests_running` (not a vLLM server, or a wrong URL).
    """
    sums: dict[str, float] = {}
    usage: dict[str, float] = {}
    for name, labels, value in _samples(text):
        if model_name is not None and labels.get("model_name", model_name) != model_name:
            continue
        if math.isnan(value):
            continue
        if name in (RUNNING, WAITING):
            sums[name] = sums.get(name, 0.0) + value
        elif name in KV_CACHE_USAGE:
            usage[name] = max(usage.get(name, 0.0), value)
    if RUNNING not in sums:
        raise ValueError(f"no {RUNNING} sample in the metrics text: not a vLLM /metrics page?")
    kv = next((usage[name] for name in KV_CACHE_USAGE if name in usage), None)
    return VllmLoad(running=sums[RUNNING], waiting=sums.get(WAITING, 0.0), kv_cache_usage=kv)
