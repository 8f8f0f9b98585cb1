"""Run several policies on one trace and collect their results (pure: no files)."""

from __future__ import annotations

from dataclasses import replace

from tide.sim.engine import SimSettings, replay
from tide.sim.oracle import oracle
from tide.sim.policies import Policy
from tide.sim.result import PolicyResult
from tide.sim.service import ServiceModel
from tide.sim.trace import Trace


def describe(policy: Policy) -> str:
    cfg = policy.config
    if cfg is None:
        return "clairvoyant lower bound"
    parks = ""
    if policy.parks:
        parks = ", parks" if policy.retention is None else f", parks (retention {policy.retention:g}s)"
    panic = f"panic {cfg.panic_threshold * 100:g}%/{cfg.panic_window:g}s" if cfg.panic_enabled else "no panic"
    return (
        f"window {cfg.stable_window:g}s, {panic}, target {cfg.target:g}/replica, "
        f"delay {cfg.scale_down_delay:g}s, retention {cfg.scale_to_zero_retention:g}s, "
        f"grace {cfg.scale_to_zero_grace_period:g}s{parks}"
    )


def run_policies(
    trace: Trace, policies: list[Policy], service: ServiceModel, settings: SimSettings, *, concurrency: int
) -> tuple[list[PolicyResult], PolicyResult]:
    """Replay every policy; returns (results in the given order, the oracle's result)."""
    durations = service.durations(trace)
    oracle_result = oracle(
        trace.arrivals,
        durations,
        limit=concurrency,
        cold_start=settings.cold_start,
        slo=settings.slo,
        sample_step=settings.sample_step,
    )
    results: list[PolicyResult] = []
    for policy in policies:
        if policy.config is None:
            results.append(oracle_result)
        else:
            own = settings if policy.retention is None else replace(settings, parking_retention=policy.retention)
            results.append(
                replay(policy.name, policy.config, trace.arrivals, durations, own, describe(policy), policy.parks)
            )
    return results, oracle_result
