"""The contention table: one row per deployment, then a line for the inventory."""

from __future__ import annotations

from pathlib import Path

from tide.sim.contention_result import ContentionResult
from tide.sim.report import layout, time_unit


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


def write_contention_plot(path: Path, title: str, result: ContentionResult) -> None:
    """Load per deployment (top) and the GPUs each holds, stacked, against the usable GPUs (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scale, unit = time_unit(result.span)
    # One time grid for the stack: every deployment's samples; before its first sample a deployment holds 0.
    grid = np.unique(np.concatenate([np.asarray(d.result.timeline.times, dtype=float) for d in result.deployments]))
    fig, (load_ax, gpu_ax) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    stacks = []
    for outcome in result.deployments:
        timeline = outcome.result.timeline
        times = np.asarray(timeline.times, dtype=float)
        load_ax.plot(times / scale, timeline.load, linewidth=0.7, label=f"{outcome.name} (priority {outcome.priority})")
        index = np.searchsorted(times, grid, side="right") - 1
        held = np.asarray(timeline.gpus_held, dtype=float)
        stacks.append(np.where(index >= 0, held[np.clip(index, 0, None)], 0.0))
    gpu_ax.stackplot(grid / scale, stacks, step="post", labels=[d.name for d in result.deployments], alpha=0.8)
    gpu_ax.axhline(result.usable_gpus, color="black", linestyle="--", linewidth=0.8, label="usable GPUs")
    load_ax.set_ylabel("in-flight + queued requests")
    load_ax.set_title(title)
    load_ax.legend(loc="upper right", fontsize=8)
    gpu_ax.set_ylabel("GPUs held\n(starting, serving, draining)")
    gpu_ax.set_xlabel(f"time ({unit})")
    gpu_ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
