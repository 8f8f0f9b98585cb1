"""`tide sim --scenario FILE`: several deployments replaying their traces on one limited inventory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tide.errors import FieldError
from tide.sim.contention import replay_scenario
from tide.sim.contention_report import contention_table, write_contention_plot
from tide.sim.engine import SimSettings
from tide.sim.scenario_files import load_scenario, load_workloads
from tide.sim.service import ServiceModel

# Options of the single-trace mode that a scenario sets per deployment instead.
PER_DEPLOYMENT_OPTIONS = {
    "policies": "--policies (set profile/autoscaling per deployment)",
    "fmt": "--format",
    "concurrency": "--concurrency",
    "min_replicas": "--min-replicas",
    "max_replicas": "--max-replicas",
    "select": "--select",
    "jitter": "--jitter",
}


def run_scenario(
    scenario_path: Path,
    traces_dir: Path,
    *,
    service: ServiceModel,
    cold_start: float,
    slo: float,
    seed: int,
    as_json: bool,
    out_dir: Path | None,
) -> None:
    try:
        scenario = load_scenario(scenario_path)
        loaded = load_workloads(scenario, traces_dir, service, seed)
    except FieldError as exc:
        raise click.UsageError(f"{scenario_path}: {exc}") from exc
    span = max(t.workload.arrivals[-1] for t in loaded) - min(t.workload.arrivals[0] for t in loaded)
    settings = SimSettings(cold_start=cold_start, slo=slo, sample_step=max(1.0, round(span / 4000.0)))
    started = time.perf_counter()
    result = replay_scenario(scenario, [t.workload for t in loaded], settings)
    elapsed = time.perf_counter() - started

    deployments = [
        {
            **outcome.summary(),
            "trace": str(trace.path),
            "cold_start_s": cold_start if spec.cold_start is None else spec.cold_start,
        }
        for outcome, spec, trace in zip(result.deployments, scenario.deployments, loaded, strict=True)
    ]
    summary = {
        "scenario": str(scenario_path),
        "cold_start_s": cold_start,
        "slo_s": slo,
        "inventory": result.inventory_summary(),
        "deployments": deployments,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        inventory = scenario.inventory
        click.echo(
            f"scenario {scenario_path.name}: {len(scenario.deployments)} deployments on {len(inventory.instances)} "
            f"instances; cold start {cold_start:g}s, queue-wait SLO {slo:g}s"
        )
        for spec, trace in zip(scenario.deployments, loaded, strict=True):
            arrivals = trace.workload.arrivals
            source = spec.trace
            shaped = (
                ""
                if (source.offset, source.time_scale) == (0, 1)
                else f" (offset {source.offset:g}s, x{source.time_scale:g})"
            )
            click.echo(
                f"  {spec.name}: {trace.trace.name}, {len(arrivals):,} requests over "
                f"{(arrivals[-1] - arrivals[0]) / 60:,.1f} min{shaped}; {spec.instance_type} x{spec.gpu_count} GPUs, "
                f"{spec.config.profile}, min {spec.config.min_replicas}, max {spec.config.max_replicas}"
            )
        click.echo(contention_table(result, slo))
        click.echo(f"({len(scenario.deployments)} deployments replayed in {elapsed:.2f}s)")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_contention_plot(out_dir / "scenario.png", f"{scenario_path.name}: load and GPUs per deployment", result)
        if not as_json:
            click.echo(f"wrote {out_dir / 'summary.json'} and {out_dir / 'scenario.png'}")
