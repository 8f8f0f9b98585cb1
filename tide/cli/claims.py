"""`tide usage`, `tide get claims` and `tide get claim ID`: GPU-minutes and capacity claims, through the
management API. (`tide apply -f` and `tide delete claim` are in `resources.py`.)

Attached to the CLI in `tide/cli/__init__.py` (`usage`, and `claims`, `claim` under `get`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import click

from tide.cli.client import client, dump, table
from tide.errors import FieldError
from tide.spec.durations import parse_duration
from tide.timestamps import format_instant, parse_instant


def claims_table(items: Sequence[Mapping[str, Any]]) -> str:
    """`tide get claims` output: one row per claim (as the API returns them)."""
    rows = []
    for item in items:
        resources = (item.get("spec") or {}).get("resources") or {}
        status = item.get("status") or {}
        rows.append(
            [
                str((item.get("spec") or {}).get("id", "")),
                str(resources.get("instanceId", "")),
                str(resources.get("instanceCount", "")),
                str(status.get("allocatedInstances", 0)),
                str(status.get("pendingInstances", 0)),
                str(resources.get("capacityType", "")).removeprefix("CAPACITY_TYPE_"),
                ",".join(str(z) for z in resources.get("zones") or ()),
            ]
        )
    return table(["ID", "INSTANCE TYPE", "COUNT", "ALLOCATED", "PENDING", "CAPACITY TYPE", "ZONES"], rows)


def usage_table(report: Mapping[str, Any]) -> str:
    """`tide usage` output: a header line with the window and total, then per deployment a total row
    (REPLICA `*`) followed by its replicas."""
    start, end = float(report["start"]), float(report["end"])
    lines = [
        f"Usage from {format_instant(start)} to {format_instant(end)}: "
        f"{report.get('totalGpuMinutes', 0)} GPU-minutes (billed per started minute)"
    ]
    rows: list[list[str]] = []
    for deployment in report.get("deployments") or []:
        replicas = deployment.get("replicas") or []
        running = sum(r["minutes"] for r in replicas if not r.get("parked"))
        parked = str(deployment.get("parkedMinutes", 0))
        rows.append([deployment["deploymentId"], "*", str(running), str(deployment["gpuMinutes"]), parked])
        rows += [
            [
                "",
                r["replicaId"],
                *(["", "0", str(r["minutes"])] if r.get("parked") else [str(r["minutes"]), str(r["gpuMinutes"]), ""]),
            ]
            for r in replicas
        ]
    headers = ["DEPLOYMENT", "REPLICA", "MINUTES", "GPU-MINUTES", "PARKED-MINUTES"]
    if not any(d.get("parkedMinutes") for d in report.get("deployments") or []):
        headers, rows = headers[:4], [row[:4] for row in rows]  # no parking: the plain table
    if rows:
        lines += ["", table(headers, rows)]
    else:
        lines.append("no replica ran in this window")
    gateway_rows: list[list[str]] = []
    for gateway in report.get("gateways") or []:  # per gateway (KEY `*`) and key, since the gateways started
        for key_id, counts in [("*", gateway), *((k["keyId"], k) for k in gateway.get("keys") or [])]:
            tokens = [str(counts[f]) for f in ("requests", "promptTokens", "completionTokens")]
            gateway_rows.append([gateway["gatewayId"] if key_id == "*" else "", key_id, *tokens])
    if gateway_rows:
        headers = ["GATEWAY", "KEY", "REQUESTS", "PROMPT-TOKENS", "COMPLETION-TOKENS"]
        lines += ["", "Gateway requests and tokens since the gateways started:", table(headers, gateway_rows)]
    return "\n".join(lines)


def usage_params(since: str, start: str | None, end: str | None, now: float) -> dict[str, str]:
    """Query parameters for `GET /usage`: `--start` wins over `--since`; `--since` counts back from `--end`
    (or now). Times go to the API as given (epoch seconds or ISO-8601), checked here first."""
    params: dict[str, str] = {}
    end_s = _instant(end, "--end") if end is not None else now
    if end is not None:
        params["end"] = end
    if start is not None:
        _instant(start, "--start")
        params["start"] = start
    else:
        try:
            seconds = parse_duration(since, "--since")
        except FieldError as exc:
            raise click.BadParameter(exc.message, param_hint="--since") from None
        params["start"] = repr(end_s - seconds)
    return params


def _instant(text: str, option: str) -> float:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command("usage")
@click.option("--since", default="24h", show_default=True, help="Window length back from --end (e.g. 90m, 24h, 168h).")
@click.option("--start", default=None, help="Window start: ISO-8601 or epoch seconds (overrides --since).")
@click.option("--end", default=None, help="Window end: ISO-8601 or epoch seconds (default: now).")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def usage_command(ctx: click.Context, since: str, start: str | None, end: str | None, output: str) -> None:
    """GPU-minutes per deployment and replica, billed per started minute while a replica runs."""
    params = usage_params(since, start, end, time.time())
    report = client(ctx).usage(params.get("start"), params.get("end"))
    click.echo(usage_table(report) if output == "table" else dump(report, output))


@click.command("claims")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_claims_command(ctx: click.Context, output: str) -> None:
    """List capacity claims with allocated and pending instances."""
    items = client(ctx).claims.list()
    body = {"capacityClaims": items}
    click.echo(claims_table(items) if output == "table" else dump(body, output))


@click.command("claim")
@click.argument("claim_id")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="yaml")
@click.pass_context
def get_claim_command(ctx: click.Context, claim_id: str, output: str) -> None:
    """One capacity claim (by id) with allocated and pending instances."""
    item = client(ctx).claims.get(claim_id)
    click.echo(claims_table([item]) if output == "table" else dump({"capacityClaim": item}, output))
