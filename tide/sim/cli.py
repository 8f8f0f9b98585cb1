"""`tide sim`: replay a trace under several autoscaling policies and compare cost and latency."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from click.core import ParameterSource

from tide.errors import FieldError
from tide.sim.contention_cli import PER_DEPLOYMENT_OPTIONS, run_scenario
from tide.sim.engine import SimSettings
from tide.sim.policies import PARKING_CHOICES, ParkingSettings, parse_duration, parse_policies
from tide.sim.readers import FORMATS, TraceError, read_trace
from tide.sim.report import table, write_json, write_plot
from tide.sim.runner import run_policies
from tide.sim.service import ServiceModel
from tide.sim.suite_cli import SUITE_FIXED_OPTIONS, run_suite_command
from tide.sim.trace import Trace


class _Duration(click.ParamType):
    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except FieldError as exc:
            self.fail(exc.message, param, ctx)


DURATION = _Duration()


@click.command("sim")
@click.argument("trace_path", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Instead of TRACE_PATH: a YAML scenario of several deployments (each with its own trace, priority "
    "and shape) on one declared inventory; see docs/SIMULATOR.md.",
)
@click.option(
    "--suite",
    is_flag=True,
    help="Instead of TRACE_PATH: the 15 shared trace scenarios, each with its own settings, under every "
    "policy; prints cost / oracle and share within the SLO per scenario, then the summary (docs/SIMULATOR.md).",
)
@click.option(
    "--scenarios",
    "suite_scenarios",
    default=None,
    help="With --suite: only these scenarios (comma-separated names).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 2),
    default=2,
    show_default=True,
    help="With --suite: scenarios replayed at once (at most 2).",
)
@click.option(
    "--traces-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/traces"),
    envvar="TIDE_TRACES_DIR",
    show_default=True,
    help="Where a scenario's (or the suite's) relative trace paths are found.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True, help="Trace format.")
@click.option(
    "--policies",
    default="knative,coreweave,baseten,oracle",
    show_default=True,
    help="Comma-separated: profiles (knative, coreweave, baseten, development), optionally with "
    "overrides as profile:key=value:key=value (e.g. knative:window=120s), and 'oracle'.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for summary.json and replicas.png (created if missing; with --scenario, summary.json and scenario.png).",
)
@click.option("--cold-start", type=DURATION, default="15s", show_default=True, help="Replica start-up time.")
@click.option("--slo", type=DURATION, default="2s", show_default=True, help="Queue-wait SLO.")
@click.option(
    "--parking",
    type=click.Choice(PARKING_CHOICES),
    default="profile",
    show_default=True,
    help="Whether a scale-down parks replicas (autoscaling.parking.enabled) for policies without "
    "`:parking=0|1`: the profile's default as live (development and tide park), on or off.",
)
@click.option("--wake-time", type=DURATION, default="1s", show_default=True, help="A parked replica's wake-up time.")
@click.option(
    "--parked-cost",
    type=click.FloatRange(0.0, 1.0),
    default=0.05,
    show_default=True,
    help="A parked replica's cost per second, as a fraction of a running one.",
)
@click.option(
    "--parking-retention",
    type=DURATION,
    default=None,
    help="autoscaling.parking.retention: a replica parked this long is stopped [default: as live, the "
    "profile's: 2h for tide, 10m for the others].",
)
@click.option(
    "--concurrency",
    type=int,
    default=8,
    show_default=True,
    help="autoscaling.concurrency: per-replica target and hard limit.",
)
@click.option("--min-replicas", type=int, default=0, show_default=True)
@click.option("--max-replicas", type=int, default=1000, show_default=True)
@click.option("--prefill-tps", type=float, default=4000.0, show_default=True, help="Prefill tokens/s per request.")
@click.option("--decode-tps", type=float, default=40.0, show_default=True, help="Decode tokens/s per request.")
@click.option(
    "--default-duration",
    type=DURATION,
    default="2s",
    show_default=True,
    help="Service time when the trace has neither durations nor tokens.",
)
@click.option("--ignore-trace-durations", is_flag=True, help="Use token counts even if the trace has durations.")
@click.option(
    "--select",
    default=None,
    help="One stream of a multi-stream file: GenTD26 model (M0002), Azure Functions row index or hash prefix.",
)
@click.option(
    "--jitter",
    type=DURATION,
    default="0s",
    show_default=True,
    help="Spread each arrival uniformly over this long (e.g. 3s for Mooncake's ticks).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for spreading per-minute counts.")
def sim_command(
    trace_path: Path | None,
    scenario_path: Path | None,
    suite: bool,
    suite_scenarios: str | None,
    workers: int,
    traces_dir: Path,
    as_json: bool,
    fmt: str,
    policies: str,
    out_dir: Path | None,
    cold_start: float,
    slo: float,
    parking: str,
    wake_time: float,
    parked_cost: float,
    parking_retention: float | None,
    concurrency: int,
    min_replicas: int,
    max_replicas: int,
    prefill_tps: float,
    decode_tps: float,
    default_duration: float,
    ignore_trace_durations: bool,
    select: str | None,
    jitter: float,
    seed: int,
) -> None:
    """Replay TRACE_PATH in virtual time under each policy and print cost and queue-wait side by side.

    With --scenario, replay several deployments on one limited inventory through the scheduler instead.
    """
    if prefill_tps <= 0 or decode_tps <= 0:
        raise click.UsageError("--prefill-tps and --decode-tps must be > 0")
    service = ServiceModel(prefill_tps, decode_tps, default_duration, not ignore_trace_durations)
    context = click.get_current_context()
    parked = ParkingSettings(parking, wake_time, parked_cost, parking_retention)
    if suite:
        if trace_path is not None or scenario_path is not None:
            raise click.UsageError("--suite replays its own traces: give no TRACE_PATH or --scenario")
        for name in SUITE_FIXED_OPTIONS:
            if context.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                raise click.UsageError(
                    f"--{name.replace('_', '-')} does not apply to --suite: each scenario has its own settings"
                )
        explicit = context.get_parameter_source("policies") is ParameterSource.COMMANDLINE
        run_suite_command(
            traces_dir,
            policies if explicit else None,
            suite_scenarios,
            cold_start=cold_start,
            slo=slo,
            seed=seed,
            workers=workers,
            as_json=as_json,
            out_dir=out_dir,
            parking=parked,
        )
        return
    if suite_scenarios is not None:
        raise click.UsageError("--scenarios needs --suite")
    if scenario_path is not None:
        if trace_path is not None:
            raise click.UsageError("give TRACE_PATH or --scenario, not both")
        for name in ("parking", "wake_time", "parked_cost", "parking_retention"):
            if context.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                raise click.UsageError(
                    f"--{name.replace('_', '-')}: parking is not modelled in --scenario replays yet "
                    "(only in single-trace and --suite replays)"
                )
        for name, flag in PER_DEPLOYMENT_OPTIONS.items():
            if context.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                raise click.UsageError(f"{flag} does not apply to --scenario: set it per deployment in the file")
        run_scenario(
            scenario_path,
            traces_dir,
            service=service,
            cold_start=cold_start,
            slo=slo,
            seed=seed,
            as_json=as_json,
            out_dir=out_dir,
        )
        return
    if trace_path is None:
        raise click.UsageError("missing TRACE_PATH (or --scenario FILE)")
    try:
        parsed = parse_policies(
            policies,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            concurrency=concurrency,
            parking=parking,
            retention=parked.retention,
        )
        trace = read_trace(trace_path, fmt, select=select, seed=seed, jitter=jitter)
    except (FieldError, TraceError) as exc:
        raise click.UsageError(str(exc)) from exc
    span = trace.span
    settings = parked.apply(SimSettings(cold_start=cold_start, slo=slo, sample_step=max(1.0, round(span / 4000.0))))
    started = time.perf_counter()
    results, oracle_result = run_policies(trace, parsed, service, settings, concurrency=concurrency)
    elapsed = time.perf_counter() - started

    summaries = [r.summary(oracle_result.replica_seconds) for r in results]
    meta: dict[str, object] = {
        "trace": str(trace_path),
        "trace_name": trace.name,
        "requests": len(trace),
        "span_s": span,
        "cold_start_s": cold_start,
        "slo_s": slo,
        **parked.describe(),
        "concurrency": concurrency,
        "service": service.describe(trace),
        "notes": trace.notes,
    }
    if as_json:
        click.echo(json.dumps({**meta, "policies": summaries}, indent=2))
    else:
        _print_table(trace, service, summaries, cold_start, concurrency, slo, len(results), elapsed)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "summary.json", meta, summaries)
        write_plot(out_dir / "replicas.png", f"{trace.name}: load and replicas per policy", results)
        if not as_json:
            click.echo(f"wrote {out_dir / 'summary.json'} and {out_dir / 'replicas.png'}")


def _print_table(
    trace: Trace,
    service: ServiceModel,
    summaries: list[dict[str, object]],
    cold_start: float,
    concurrency: int,
    slo: float,
    policies: int,
    elapsed: float,
) -> None:
    click.echo(
        f"trace {trace.name}: {len(trace):,} requests over {trace.span / 60:,.1f} min; {service.describe(trace)}; "
        f"cold start {cold_start:g}s, concurrency {concurrency}/replica"
    )
    for note in trace.notes:
        click.echo(f"  note: {note}")
    click.echo(table(summaries, slo))
    click.echo(f"({policies} policies replayed in {elapsed:.2f}s)")
