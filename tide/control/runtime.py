"""What the controller keeps per deployment between reconciles: its replicas, placements and scaler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control.scaling import DeploymentScaler
from tide.scheduling import Placement
from tide.spec import DeploymentSpec
from tide.store import DeploymentRecord


@dataclass(frozen=True)
class ParkedAt:
    """Where a parked replica ran (it wakes only there) and since when it is parked."""

    instance_id: str
    gpus: int
    gpu_ids: tuple[int, ...]
    since: float
    host_bytes: int = 0  # host memory it holds while parked (its weights, at park level 1)


@dataclass
class DeploymentRuntime:
    id: str
    record: DeploymentRecord
    spec: DeploymentSpec | None = None
    spec_error: str | None = None
    replicas: dict[str, ReplicaState] = field(default_factory=dict)
    draining: set[str] = field(default_factory=set)
    consecutive_crashes: int = 0
    crash_message: str | None = None
    lost_message: str | None = None  # a replica's machine went away; cleared when a replica is ready again
    failure: str | None = None
    next_start_at: float = 0.0
    ever_ready_generation: int = 0
    scaler: DeploymentScaler | None = None
    placements: dict[str, Placement] = field(default_factory=dict)  # replica id -> where it runs
    gpu_ids: dict[str, tuple[int, ...]] = field(default_factory=dict)
    pending_message: str | None = None
    woke_at: float | None = None  # first request that found no ready replica, until one is ready
    queued_arrivals: int = 0  # requests queued behind busy replicas since the last decision (parked-replica wakes)
    # The gateways' count of requests routed here when the autoscaler was last fed (None: not read yet).
    requests_seen: int | None = None
    last_status: dict[str, Any] = field(default_factory=dict)
    condition_times: dict[tuple[str, str], float] = field(default_factory=dict)
    # Replicas placed on GPUs that a preempted (or otherwise leaving) replica still holds: they start when
    # it has stopped, never beside it on the same GPUs.
    awaiting_gpus: set[str] = field(default_factory=set)
    # Parked replicas (tide.control.parking): alive, out of rotation, no placement in the books.
    parked: dict[str, ParkedAt] = field(default_factory=dict)
    weights_checked_generation: int = 0  # a scaled-to-zero deployment's weights were looked at for this one

    def ready_count(self) -> int:
        """Ready replicas in rotation (draining ones are on their way out)."""
        return sum(1 for rid, r in self.replicas.items() if r.phase is ReplicaPhase.READY and rid not in self.draining)
