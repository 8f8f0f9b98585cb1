"""Load signals from an engine replica's `/metrics` (Prometheus text format); pure, no I/O.

Each engine names its gauges differently (`LoadMetricNames`); the controller scrapes every ready replica
and feeds the result to the autoscaler next to the gateway's own counts. vLLM exports, per engine
(`engine="0"`, ...) and served model:

- `vllm:num_requests_running`: requests in the running batch;
- `vllm:num_requests_waiting`: requests queued for a slot;
- `vllm:kv_cache_usage_perc` (a fraction, 1 = full; vLLM >= 0.10), called `vllm:gpu_cache_usage_perc` before;
- `vllm:prefix_cache_queries` / `vllm:prefix_cache_hits` (counters, exposed with `_total`: prompt tokens
  looked up in the prefix cache, and those found, since the engine started).

Running, waiting and the prefix-cache counters are summed over engines (data-parallel ranks); KV-cache
usage is the fullest engine's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadMetricNames:
    """Which series of an engine's /metrics page carry its load."""

    running: str
    waiting: str
    kv_cache_usage: tuple[str, ...]  # candidates, newest name first; empty when the engine has no KV cache
    model_label: str  # the label that names the served model
    prefix_cache_hits: tuple[str, ...] = ()  # candidates; empty when the engine has no prefix cache
    prefix_cache_queries: tuple[str, ...] = ()


VLLM_LOAD_METRICS = LoadMetricNames(
    running="vllm:num_requests_running",
    waiting="vllm:num_requests_waiting",
    kv_cache_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    model_label="model_name",
    prefix_cache_hits=("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits"),
    prefix_cache_queries=("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries"),
)
BUILTIN_LOAD_METRICS = LoadMetricNames(
    running="tide_engine_running_requests",
    waiting="tide_engine_waiting_requests",
    kv_cache_usage=(),
    model_label="model",
)

# name, optional {labels}, value, optional timestamp
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?\s+(?P<value>\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class EngineLoad:
    running: float
    waiting: float
    kv_cache_usage: float | None  # 0..1; None when the server does not export it
    # Prompt tokens found in / looked up in the prefix cache since the engine started; None: not exported
    prefix_cache_hits: float | None = None
    prefix_cache_queries: float | None = None

    @property
    def in_flight(self) -> float:
        return self.running + self.waiting

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        """Hits / queries since the engine started; None before its first query or when not exported."""
        if self.prefix_cache_hits is None or not self.prefix_cache_queries:
            return None
        return self.prefix_cache_hits / self.prefix_cache_queries


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample in a Prometheus text exposition; lines that are not samples
    (comments, malformed) are skipped."""
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


def parse_vllm_load(text: str, model_name: str | None = None) -> EngineLoad:
    """The load of one vLLM server from its `/metrics` text (see `parse_engine_load`)."""
    return parse_engine_load(text, VLLM_LOAD_METRICS, model_name)


def parse_engine_load(text: str, names: LoadMetricNames, model_name: str | None = None) -> EngineLoad:
    """The load of one engine server from its `/metrics` text.

    `model_name` keeps only the series of that served model (a server that serves several). Raises
    ValueError when the text has no running-requests sample (not that engine's page, or a wrong URL).
    """
    sums: dict[str, float] = {}
    usage: dict[str, float] = {}
    counters = (*names.prefix_cache_hits, *names.prefix_cache_queries)
    for name, labels, value in samples(text):
        if model_name is not None and labels.get(names.model_label, model_name) != model_name:
            continue
        if math.isnan(value):
            continue
        if name in (names.running, names.waiting) or name in counters:
            sums[name] = sums.get(name, 0.0) + value
        elif name in names.kv_cache_usage:
            usage[name] = max(usage.get(name, 0.0), value)
    if names.running not in sums:
        raise ValueError(f"no {names.running} sample in the metrics text: not this engine's /metrics page?")
    kv = next((usage[name] for name in names.kv_cache_usage if name in usage), None)
    return EngineLoad(
        running=sums[names.running],
        waiting=sums.get(names.waiting, 0.0),
        kv_cache_usage=kv,
        prefix_cache_hits=next((sums[name] for name in names.prefix_cache_hits if name in sums), None),
        prefix_cache_queries=next((sums[name] for name in names.prefix_cache_queries if name in sums), None),
    )
