"""How the CLI shows replicas: where each runs (instance, zone, GPU ids) and how long each phase took
(`capacity wait 0.1 s, weights 3.2 s, engine load 1.1 s, ready for 2 m 5 s`) instead of epoch times.
Pure: `now` is a parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Phases (tide.backends.base.ReplicaPhase values) as people say them.
PHASE_NAMES = {
    "waiting_for_capacity": "capacity wait",
    "downloading_weights": "weights",
    "engine_load": "engine load",
    "ready": "ready",
    "draining": "draining",
    "stopped": "stopped",
    "crashed": "crashed",
    "failed": "failed",
    "lost": "lost",
    "parking": "parking",
    "parked": "parked",
    "waking": "waking",
}


def duration_text(seconds: float) -> str:
    """`0.4 s`, `3.2 s`, `2 m 5 s`, `3 h 2 m`, `2 d 4 h`."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} m {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} m"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def phase_durations(phase_times: Mapping[str, float], now: float) -> list[tuple[str, float, bool]]:
    """(phase, seconds in it, whether it is the current one) in the order they began. A phase entered
    again (ready after waking) counts from its latest start, as `phaseTimes` keeps only that."""
    ordered = sorted(((float(t), p) for p, t in phase_times.items() if isinstance(t, int | float)))
    out = []
    for i, (start, phase) in enumerate(ordered):
        current = i == len(ordered) - 1
        end = now if current else ordered[i + 1][0]
        out.append((phase, end - start, current))
    return out


def phases_text(replica: Mapping[str, Any], now: float) -> str:
    """`capacity wait 0.1 s, weights 3.2 s, engine load 1.1 s, ready for 2 m 5 s`."""
    parts = []
    for phase, seconds, current in phase_durations(replica.get("phaseTimes") or {}, now):
        name = PHASE_NAMES.get(phase, phase.replace("_", " "))
        parts.append(f"{name} for {duration_text(seconds)}" if current else f"{name} {duration_text(seconds)}")
    return ", ".join(parts) or "-"


def placement_text(replica: Mapping[str, Any]) -> str:
    """`local-gpu, zone local, GPUs 0,1`; `h100-8x-0, zone us-east-04a, 8 GPUs` on a virtual instance;
    `-` while it has no place (waiting for capacity)."""
    parts = []
    if replica.get("instanceId"):
        parts.append(str(replica["instanceId"]))
    if replica.get("zone"):
        parts.append(f"zone {replica['zone']}")
    gpu_ids = replica.get("gpuIds") or []
    if gpu_ids:
        parts.append(f"GPU{'s' if len(gpu_ids) > 1 else ''} {','.join(str(g) for g in gpu_ids)}")
    elif replica.get("gpuCount"):  # a virtual instance: a count, no device indices
        parts.append(f"{replica['gpuCount']} GPU{'s' if replica['gpuCount'] > 1 else ''}")
    return ", ".join(parts) or "-"


def phase_text(replica: Mapping[str, Any]) -> str:
    """The phase, with its progress where known and `(draining)` when it is on its way out."""
    text = str(replica.get("phase", "?"))
    progress = replica.get("progress") or {}
    if isinstance(progress.get("percent"), int | float):
        text += f" {progress['percent']:.0f}%"
    if replica.get("draining"):
        text += " (draining)"
    return text
