"""The scheduler's inputs and outputs: what deployments ask for, where replicas sit, what must change."""

from __future__ import annotations

from dataclasses import dataclass

from tide.scheduling.inventory import CAPACITY_CLASSES, CapacityClass, parse_capacity_class


@dataclass(frozen=True)
class DeploymentRequest:
    """One deployment wanting `replicas` replicas, each on ONE instance with `gpu_count` free GPUs.

    `capacity_classes` in any order (reserved is always tried first); `zones` in order of preference,
    empty meaning every zone that offers the type; `priority` 0-1000, higher scales first; the first
    `min_replicas` replicas are never preempted and are placed before anyone's replicas above min.
    """

    deployment_id: str
    replicas: int
    instance_type: str
    gpu_count: int
    # "reserved"/"on_demand" or API.md's CAPACITY_CLASS_* enums; stored as the short names, in the order
    # they are tried (reserved first).
    capacity_classes: tuple[str, ...] = CAPACITY_CLASSES
    zones: tuple[str, ...] = ()
    priority: int = 0
    min_replicas: int = 0

    def __post_init__(self) -> None:
        # Programming errors, not user input: the spec room validates what users send.
        if self.replicas < 0 or self.min_replicas < 0:
            raise ValueError(f"{self.deployment_id}: replicas and min_replicas must be >= 0")
        if self.gpu_count < 1:
            raise ValueError(f"{self.deployment_id}: gpu_count must be >= 1")
        classes = {parse_capacity_class(c) for c in self.capacity_classes}
        if not classes:
            raise ValueError(f"{self.deployment_id}: capacity_classes must name at least one class")
        object.__setattr__(self, "capacity_classes", tuple(c for c in CAPACITY_CLASSES if c in classes))
        object.__setattr__(self, "zones", tuple(self.zones))

    def class_order(self) -> tuple[CapacityClass, ...]:
        """Reserved before on-demand when both are allowed: reserved GPUs are paid for either way."""
        return tuple(c for c in CAPACITY_CLASSES if c in self.capacity_classes)


@dataclass(frozen=True)
class Placement:
    """A replica on an instance, holding `gpus` of its GPUs since `since` (seconds, the caller's clock)."""

    deployment_id: str
    replica_id: str
    instance_id: str
    gpus: int
    since: float = 0.0


@dataclass(frozen=True)
class Preemption:
    """A running replica that must go (drain it first) so a higher-priority replica can have its GPUs."""

    placement: Placement
    by_deployment_id: str
    message: str


@dataclass(frozen=True)
class Pending:
    """Replicas of a deployment that could not be placed, and what exactly is missing."""

    deployment_id: str
    count: int
    message: str


@dataclass(frozen=True)
class ScheduleResult:
    """One scheduling decision.

    `placements`: every replica that should exist afterwards (kept + started), sorted.
    `started`: new placements to start. `preempted`: running replicas to drain and stop for a
    higher-priority one. `surplus`: running replicas above what their deployment now wants (newest first
    chosen) to drain. `lost`: input placements whose instance is gone or was oversubscribed.
    `pending`: what could not be placed and why.
    """

    placements: tuple[Placement, ...]
    started: tuple[Placement, ...]
    preempted: tuple[Preemption, ...]
    surplus: tuple[Placement, ...]
    lost: tuple[Placement, ...]
    pending: tuple[Pending, ...]
    decided_at: float

    @classmethod
    def nothing(cls, decided_at: float) -> ScheduleResult:
        """The decision when nobody asks for anything: nothing started, preempted or pending."""
        return cls((), (), (), (), (), (), decided_at)

    def pending_for(self, deployment_id: str) -> Pending | None:
        return next((p for p in self.pending if p.deployment_id == deployment_id), None)

    def placements_for(self, deployment_id: str) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.deployment_id == deployment_id)
