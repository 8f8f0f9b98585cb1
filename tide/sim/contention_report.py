"""The contention table: one row per deployment, then a line for the inventory."""

from __future__ import annotations

from tide.sim.contention_result import ContentionResult
from tide.sim.report import layout


def contention_table(result: ContentionResult, slo: float) -> str:
    headers = [
        "deployment",
        "priority",
        "GPUs",
        "requests",
        "replica-s",
        "GPU-s",
        "cold starts",
        "preempted",
        "pending",
        "drain wait",
        "wait p50",
        "wait p95",
        "wait p99",
        f"<= {slo:g}s",
        "peak",
    ]
    rows = []
    for outcome in result.deployments:
        r = outcome.result
        rows.append(
            [
                outcome.name,
                str(outcome.priority),
                str(outcome.gpu_count),
                str(r.requests),
                f"{r.replica_seconds:,.0f}",
                f"{outcome.gpu_seconds:,.0f}",
                str(r.cold_starts),
                str(outcome.preemptions),
                f"{outcome.pending_seconds:,.0f}s",
                f"{outcome.drain_wait_seconds:,.0f}s",
                f"{r.wait_percentile(50):.2f}s",
                f"{r.wait_percentile(95):.2f}s",
                f"{r.wait_percentile(99):.2f}s",
                f"{r.within_slo * 100:.1f}%",
                str(r.peak_replicas),
            ]
        )
    return "\n".join([layout(headers, rows), inventory_line(result)])


def inventory_line(result: ContentionResult) -> str:
    usable = (
        f"{result.total_gpus} GPUs"
        if result.usable_gpus == result.total_gpus
        else f"{result.usable_gpus} of {result.total_gpus} GPUs usable"
    )
    return (
        f"inventory: {result.instances} instances, {usable}; {result.gpu_seconds:,.0f} GPU-s used over "
        f"{result.span / 60:,.1f} min = {result.utilization * 100:.1f}% utilization; "
        f"peak {result.peak_gpus} GPUs in use"
    )
