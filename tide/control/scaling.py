"""Per-deployment scaling state: feeds gateway load signals to the pure autoscaler, keeps its history."""

from __future__ import annotations

from typing import Any

from tide.spec import DeploymentSpec


class DeploymentScaler:
    def __init__(self, spec: DeploymentSpec, now: float) -> None:
        self.spec = spec

    def update_spec(self, spec: DeploymentSpec) -> None:
        self.spec = spec

    def desired(self, now: float, ready_replicas: int) -> int:
        a = self.spec.autoscaling
        return min(a.max, max(a.min, 1))

    def wake(self, now: float) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {}
