"""Per-deployment bookkeeping while one scheduling decision is being made."""

from __future__ import annotations

from dataclasses import dataclass, field

from tide.scheduling.decisions import DeploymentRequest, Placement
from tide.scheduling.plan import Plan


@dataclass(eq=False)
class DeploymentState:
    request: DeploymentRequest
    plan: Plan
    running: list[Placement] = field(default_factory=list)
    started: list[Placement] = field(default_factory=list)
    taken_replica_ids: set[str] = field(default_factory=set)
    next_replica_number: int = 0
    # Set once a replica found no room: later replicas of the same shape will not find any either.
    stuck: bool = False

    @property
    def count(self) -> int:
        return len(self.running) + len(self.started)

    @property
    def above_min(self) -> int:
        return self.count - self.request.min_replicas

    def new_replica_id(self) -> str:
        while True:
            candidate = f"{self.request.deployment_id}-r{self.next_replica_number}"
            self.next_replica_number += 1
            if candidate not in self.taken_replica_ids:
                self.taken_replica_ids.add(candidate)
                return candidate


Resident = tuple[DeploymentState, Placement]
