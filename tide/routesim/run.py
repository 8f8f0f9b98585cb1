"""Replaying a trace under one policy, and the comparison table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tide.gateway.prefix import chain_ids
from tide.routesim.policies import SimPolicy
from tide.routesim.replica import ServiceModel, SimReplica
from tide.routesim.trace import TraceRequest


@dataclass(frozen=True)
class SimResult:
    policy: str
    replicas: int
    hit_rate: float  # cached blocks / prompt blocks, over all requests
    balance: float  # max / mean requests per replica
    ttft_p50_s: float
    ttft_p99_s: float
    per_replica_requests: tuple[int, ...]


def replay(
    name: str, policy: SimPolicy, requests: Sequence[TraceRequest], replicas: int, model: ServiceModel,
    time_scale: float = 1.0, flush_at_s: float | None = None,
) -> SimResult:  # fmt: skip
    """`time_scale` > 1 compresses the arrivals (more load on the same replicas). `flush_at_s`: the first
    replica's cache is emptied then (its engine restarted at the same address: the router is not told)."""
    fleet = [SimReplica(model) for _ in range(replicas)]
    ttfts: list[float] = []
    observe = getattr(policy, "observe", None)  # policies that learn from each request's hits
    for request in requests:
        now = request.arrival_s / time_scale
        if flush_at_s is not None and now >= flush_at_s:
            fleet[0].cache.clear()
            flush_at_s = None
        names = chain_ids(request.blocks)
        loads = [replica.load(now) for replica in fleet]
        chosen = policy.choose(names, loads, now)
        replica = fleet[chosen]
        hits_before = replica.hit_blocks
        ttfts.append(replica.serve(names, request.output_tokens, now))
        if observe is not None:
            observe(replica.hit_blocks - hits_before)
    counts = tuple(r.requests for r in fleet)
    blocks = sum(r.blocks for r in fleet)
    ttfts.sort()
    return SimResult(
        policy=name,
        replicas=replicas,
        hit_rate=sum(r.hit_blocks for r in fleet) / blocks if blocks else 0.0,
        balance=max(counts) / statistics.fmean(counts) if requests else 1.0,
        ttft_p50_s=_quantile(ttfts, 0.5),
        ttft_p99_s=_quantile(ttfts, 0.99),
        per_replica_requests=counts,
    )


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def format_table(results: Sequence[SimResult]) -> str:
    lines = [
        "| replicas | policy | hit rate | balance (max/mean) | TTFT p50 s | TTFT p99 s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.replicas} | {r.policy} | {r.hit_rate:.1%} | {r.balance:.2f} | {r.ttft_p50_s:.3f} | {r.ttft_p99_s:.3f} |"
        )
    return "\n".join(lines)
