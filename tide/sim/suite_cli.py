"""`tide sim --suite`: run the scenarios, print the table, write suite.json (the I/O around suite.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tide.sim.policies import ParkingSettings, parse_policies
from tide.sim.readers import TraceError
from tide.sim.suite import as_json as suite_json
from tide.sim.suite import default_policies, run_suite, select_scenarios
from tide.sim.suite_report import suite_table

# Settings each scenario fixes for itself: refused on the command line with --suite.
SUITE_FIXED_OPTIONS = (
    "fmt",
    "concurrency",
    "min_replicas",
    "max_replicas",
    "select",
    "jitter",
    "default_duration",
    "prefill_tps",
    "decode_tps",
    "ignore_trace_durations",
)


def run_suite_command(
    traces_dir: Path,
    policies: str | None,
    names: str | None,
    *,
    cold_start: float,
    slo: float,
    seed: int,
    workers: int,
    as_json: bool,
    out_dir: Path | None,
    parking: ParkingSettings | None = None,
) -> None:
    parking = parking or ParkingSettings()
    spec = policies or default_policies()
    try:
        scenarios = select_scenarios(names)
        # Refuse a bad --policies before any worker starts (concurrency does not change what parses).
        parsed = parse_policies(
            spec, min_replicas=0, max_replicas=1000, concurrency=8, parking=parking.mode, retention=parking.retention
        )
        names_parsed = [p.name for p in parsed]
        parking_on = [p.name for p in parsed if p.parks]
    except ValueError as exc:  # FieldError included
        raise click.UsageError(str(exc)) from exc
    names_parsed = [n for n in names_parsed if n != "oracle"]
    if not names_parsed:
        raise click.UsageError("--policies: give at least one policy besides the oracle")
    missing = sorted({s.trace for s in scenarios if not (traces_dir / s.trace).is_file()})
    if missing:
        raise click.UsageError(
            f"--traces-dir {traces_dir}: missing {', '.join(missing)} (point --traces-dir or TIDE_TRACES_DIR "
            "at the shared traces folder)"
        )
    subject = names_parsed[0]
    started = time.perf_counter()
    try:
        outcomes = run_suite(
            scenarios,
            traces_dir,
            spec,
            cold_start=cold_start,
            slo=slo,
            workers=workers,
            seed=seed,
            parking=parking,
        )
    except TraceError as exc:
        raise click.ClickException(str(exc)) from exc
    elapsed = time.perf_counter() - started
    meta: dict[str, object] = {
        "traces_dir": str(traces_dir),
        "cold_start_s": cold_start,
        "slo_s": slo,
        **parking.describe(),
        "parking_policies": parking_on,
        "workers": workers,
        "wall_s": round(elapsed, 2),
    }
    document = suite_json(outcomes, subject, meta)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(
            f"suite: {len(outcomes)} scenarios; cold start {cold_start:g}s, queue-wait SLO {slo:g}s; "
            f"cost / oracle and share of waits <= {slo:g}s; subject {subject}"
        )
        if parking_on:
            described = parking.describe()
            click.echo(
                f"parking: {', '.join(parking_on)} (wake {described['wake_time_s']:g}s, parked cost "
                f"{described['parked_cost']:g}, {parking.retention_text()})"
            )
        click.echo(suite_table(outcomes, subject, slo))
        click.echo(f"({len(outcomes)} scenarios replayed in {elapsed:.1f}s with {workers} worker(s))")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "suite.json").write_text(json.dumps(document, indent=2) + "\n")
        if not as_json:
            click.echo(f"wrote {out_dir / 'suite.json'}")
