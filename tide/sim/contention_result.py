"""What a contention replay produced: per deployment, and for the inventory as a whole."""

from __future__ import annotations

from dataclasses import dataclass

from tide.sim.result import PolicyResult


@dataclass
class DeploymentOutcome:
    """`result` holds what a single-deployment replay reports (replica-seconds, waits, cold starts);
    the rest is what contention adds."""

    name: str
    priority: int
    gpu_count: int
    result: PolicyResult
    preemptions: int  # replicas of this deployment the scheduler preempted
    pending_seconds: float  # time with at least one replica waiting for capacity
    peak_pending: int
    drain_wait_seconds: float = 0.0  # replica-seconds placed on GPUs a preempted replica still drained

    @property
    def gpu_seconds(self) -> float:
        return self.result.replica_seconds * self.gpu_count

    def summary(self) -> dict[str, object]:
        base = self.result.summary(None)
        for key in ("policy", "description", "cost_vs_oracle"):  # the single-trace table's columns
            base.pop(key)
        return {
            "deployment": self.name,
            "priority": self.priority,
            "gpu_count": self.gpu_count,
            "gpu_seconds": round(self.gpu_seconds, 3),
            **base,
            "preemptions": self.preemptions,
            "pending_s": round(self.pending_seconds, 3),
            "peak_pending": self.peak_pending,
            "drain_wait_s": round(self.drain_wait_seconds, 3),
        }


@dataclass
class ContentionResult:
    deployments: list[DeploymentOutcome]
    instances: int
    total_gpus: int
    usable_gpus: int  # on instances that can run replicas (joined; reserved ones held by a claim)
    start: float
    end: float
    peak_gpus: int

    @property
    def span(self) -> float:
        return self.end - self.start

    @property
    def gpu_seconds(self) -> float:
        return sum(d.gpu_seconds for d in self.deployments)

    @property
    def utilization(self) -> float:
        """Share of the usable GPU-seconds between the first request and the last completion in use."""
        available = self.usable_gpus * self.span
        return self.gpu_seconds / available if available > 0 else 0.0

    def inventory_summary(self) -> dict[str, object]:
        return {
            "instances": self.instances,
            "gpus": self.total_gpus,
            "usable_gpus": self.usable_gpus,
            "span_s": round(self.span, 3),
            "gpu_seconds": round(self.gpu_seconds, 3),
            "utilization": round(self.utilization, 5),
            "peak_gpus": self.peak_gpus,
        }
