"""Drive an Autoscaler second by second with replicas that become ready instantly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tide.autoscale import Autoscaler, AutoscalerConfig, ScaleDecision, resolve_config


def config(profile: str, overrides: Mapping[str, float | int | None] | None = None, **kw: int) -> AutoscalerConfig:
    args = {"min_replicas": 0, "max_replicas": 50, "concurrency": 10} | kw
    return resolve_config(profile, dict(overrides or {}), **args)


@dataclass
class Run:
    decisions: dict[int, ScaleDecision]  # by (even) second

    def desired(self, t: int) -> int:
        return self.decisions[t - t % 2].desired

    def first_time(self, predicate: Callable[[ScaleDecision], bool], after: int = 0) -> int | None:
        for t in sorted(self.decisions):
            if t >= after and predicate(self.decisions[t]):
                return t
        return None


def simulate(cfg: AutoscalerConfig, load: Callable[[int], float], seconds: int, *, ready: int = 0) -> Run:
    """Record `load(t)` each second, decide every 2 s; ready replicas = the last desired count."""
    scaler = Autoscaler(cfg)
    decisions: dict[int, ScaleDecision] = {}
    for t in range(seconds):
        value = load(t)
        if ready == 0 and value > 0 and scaler.last is not None and scaler.last.desired == 0:
            ready = max(ready, 0)
            decisions[t - t % 2] = scaler.wake(float(t), ready)
        scaler.record(float(t), value)
        if t % 2 == 0:
            decision = scaler.decide(float(t), ready)
            decisions[t] = decision
            ready = decision.desired
    return Run(decisions)
