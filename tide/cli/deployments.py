"""The client commands of deployments and gateways: get (deployments, one deployment, gateways), logs,
wait, keys. `apply` and `delete`, which take every kind of resource, are in `resources.py`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import click

from tide.cli.client import client, dump, resource_id, table
from tide.cli.replicas import phase_text, phases_text, placement_text
from tide.cli.root import TideGroup
from tide.sdk import Deployment, TideError

OUTPUT = click.Choice(["table", "json", "yaml"])


@click.group(cls=TideGroup)
def get() -> None:
    """Show deployments, gateways and capacity claims."""


def _summary_row(item: Mapping[str, Any]) -> list[str]:
    status = item.get("status") or {}
    spec = item["spec"]
    ready = f"{status.get('readyReplicas', 0)}/{status.get('desiredReplicas', 0)}"
    if status.get("parkedReplicas"):
        ready += f" +{status['parkedReplicas']} parked"
    conditions = status.get("conditions") or []
    reason = conditions[0]["message"] if conditions else ""
    return [
        resource_id(item),
        spec.get("model", {}).get("name", spec["name"]),
        str(status.get("status", "")).removeprefix("STATUS_"),
        ready,
        str(spec.get("traffic", {}).get("weight", "")),
        spec["runtime"]["engine"],
        reason[:70],
    ]


@get.command("deployments")
@click.option("-o", "--output", type=OUTPUT, default="table")
@click.pass_context
def get_deployments(ctx: click.Context, output: str) -> None:
    """List deployments with state, ready/desired replicas and the first condition."""
    items = client(ctx).deployments.list()
    if output != "table":
        click.echo(dump({"deployments": items}, output))
        return
    headers = ["ID", "MODEL", "STATE", "READY", "WEIGHT", "ENGINE", "CONDITION"]
    click.echo(table(headers, [_summary_row(i) for i in items]))


@get.command("gateways")
@click.option("-o", "--output", type=OUTPUT, default="table")
@click.pass_context
def get_gateways(ctx: click.Context, output: str) -> None:
    """List gateways with their authentication, routing strategy and endpoints."""
    items = client(ctx).gateways.list()
    if output != "table":
        click.echo(dump({"gateways": items}, output))
        return
    click.echo(table(["ID", "AUTH", "ROUTING", "ENDPOINTS"], [_gateway_row(g) for g in items]))


def _gateway_row(item: Mapping[str, Any]) -> list[str]:
    spec = item["spec"]
    auth = next((k for k in ("coreWeaveAuth", "apiKeyAuth") if k in spec), "?")
    routing = next((k for k in ("bodyBasedRouting", "headerBasedRouting", "pathBasedRouting") if k in spec), "?")
    if routing == "headerBasedRouting":
        routing += f" ({spec[routing].get('headerName', '')})"
    return [resource_id(item), auth, routing, " ".join(item["status"].get("endpoints") or [])]


@click.group(cls=TideGroup)
def keys() -> None:
    """API keys of apiKeyAuth gateways: a key opens its own gateway only."""


@keys.command("create")
@click.argument("gateway")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option("--requests-per-minute", type=click.IntRange(min=1), default=None, help="Limit; past it: 429.")
@click.option(
    "--tokens-per-minute",
    type=click.IntRange(min=1),
    default=None,
    help="Limit on prompt + completion tokens the engine reports; past it: 429.",
)
@click.pass_context
def keys_create(
    ctx: click.Context, gateway: str, name: str, requests_per_minute: int | None, tokens_per_minute: int | None
) -> None:
    """Issue a key for GATEWAY. It is printed once: Tide keeps only its hash."""
    created = client(ctx).keys.create(gateway, name or None, requests_per_minute, tokens_per_minute)
    click.echo(f"apikey/{created['apiKey']['id']} created for gateway {gateway}; the key (shown once):", err=True)
    click.echo(created["key"])


@keys.command("list")
@click.argument("gateway")
@click.pass_context
def keys_list(ctx: click.Context, gateway: str) -> None:
    """The keys of GATEWAY (their ids, labels and first characters; never the keys)."""
    items = client(ctx).keys.list(gateway)
    rows = [
        [
            k["id"],
            k["name"],
            k["prefix"] + "...",
            str(k.get("requestsPerMinute", "-")),
            str(k.get("tokensPerMinute", "-")),
            k["createdAt"],
        ]
        for k in items
    ]
    click.echo(table(["ID", "NAME", "KEY", "REQUESTS/MIN", "TOKENS/MIN", "CREATED"], rows))


@keys.command("revoke")
@click.argument("gateway")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, gateway: str, key_id: str) -> None:
    """Revoke a key of GATEWAY: requests with it are refused within a second."""
    client(ctx).keys.revoke(gateway, key_id)
    click.echo(f"apikey/{key_id} revoked")


@get.command("deployment")
@click.argument("name")
@click.option("-o", "--output", type=OUTPUT, default="table")
@click.pass_context
def get_deployment(ctx: click.Context, name: str, output: str) -> None:
    """One deployment: state, conditions, the last scaling decision, and each replica with its phase,
    placement (instance, zone, GPU ids), load, and how long each phase of its start took."""
    item = client(ctx).deployments.get(name)
    if output != "table":
        click.echo(dump({"deployment": item}, output))
        return
    click.echo(describe_deployment(item, time.time()))


def describe_deployment(item: Mapping[str, Any], now: float) -> str:
    """`tide get deployment` output; `now` (epoch seconds) ends the phase each replica is in."""
    status = item.get("status") or {}
    spec = item["spec"]
    a = spec.get("autoscaling", {})
    lines = [
        f"Deployment {resource_id(item)} ({spec['name']}, model {spec.get('model', {}).get('name', '?')}, "
        f"generation {status.get('generation', '?')})",
        f"  state:     {status.get('status', '?')}",
        f"  gateways:  {', '.join(spec.get('gatewayIds') or []) or '-'}",
        f"  replicas:  {status.get('readyReplicas', 0)} ready / {status.get('desiredReplicas', 0)} desired"
        f"{f' / {parked} parked' if (parked := status.get('parkedReplicas')) else ''}"
        f"  (min {a.get('min')}, max {a.get('max')}, concurrency {a.get('concurrency')})",
        f"  weights:   {spec.get('model', {}).get('bucket', '-')}/{spec.get('model', {}).get('path', '-')}",
        f"  engine:    {spec['runtime']['engine']} {spec['runtime'].get('version', '')}",
        f"  traffic:   weight {spec.get('traffic', {}).get('weight')}{'  (disabled)' if spec.get('disabled') else ''}",
    ]
    decision = status.get("lastScalingDecision")
    if decision:
        lines.append(f"  scaling:   {decision.get('reason', decision)}")
    if "engineLoad" in status:
        lines.append(f"  load:      {_load_text(status['engineLoad'])} (from the engines' /metrics)")
    replicas = status.get("replicas") or []
    if replicas:
        rows = [
            [
                r["id"],
                phase_text(r),
                placement_text(r),
                _load_text(r["load"]) if "load" in r else "",
                r.get("url", ""),
            ]
            for r in replicas
        ]
        lines += ["", table(["REPLICA", "PHASE", "PLACEMENT", "LOAD", "URL"], rows), "", "Replica phases:"]
        for r in replicas:
            message = f"\n    {r['message']}" if r.get("message") else ""
            lines.append(f"  {r['id']}: {phases_text(r, now)}{message}")
    conditions = status.get("conditions") or []
    if conditions:
        lines.append("")
        lines.append("Conditions:")
        lines += [f"  {c['type']}: {c['message']}" for c in conditions]
    return "\n".join(lines)


def _load_text(load: Mapping[str, Any]) -> str:
    text = f"{load.get('runningRequests', 0)} running, {load.get('waitingRequests', 0)} waiting"
    if "kvCacheUsage" in load:
        text += f", KV cache {load['kvCacheUsage']:.0%}"
    if "prefixCacheHitRate" in load:
        text += f", prefix cache hits {load['prefixCacheHitRate']:.0%}"
    return text


@click.command()
@click.argument("name")
@click.option("--tail", default=100, show_default=True, help="Lines per replica.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new lines (each prefixed with its replica) until Ctrl-C."
)
@click.option("--interval", default=1.0, show_default=True, hidden=True, help="Seconds between polls with --follow.")
@click.pass_context
def logs(ctx: click.Context, name: str, tail: int, follow: bool, interval: float) -> None:
    """Show replica logs of a deployment."""
    answers = client(ctx).deployments.follow_logs(name, tail, interval)
    first = next(answers)
    if not first["replicas"] and not follow:
        click.echo(f"no replica logs for {first['id']} yet")
    for replica_id, text in first["replicas"].items():
        click.secho(f"==> {replica_id} <==", bold=True)
        click.echo(text, nl=False)
    if not follow:
        return
    try:
        for answer in answers:
            for replica_id, text in answer["replicas"].items():
                for line in text.splitlines():
                    click.echo(f"[{replica_id}] {line}")
    except KeyboardInterrupt:
        pass


def progress_line(item: Mapping[str, Any], elapsed_s: float) -> str:
    """One line of `tide wait`'s progress: elapsed time, state, ready/desired, each replica's phase, and
    the first condition."""
    status = item.get("status") or {}
    parts = [
        f"[{elapsed_s:6.1f} s]",
        str(status.get("status", "?")).removeprefix("STATUS_"),
        f"ready {status.get('readyReplicas', 0)}/{status.get('desiredReplicas', 0)}",
    ]
    replicas = status.get("replicas") or []
    if replicas:
        parts.append(", ".join(f"{r['id']} {phase_text(r)}" for r in replicas))
    conditions = status.get("conditions") or []
    if conditions:
        parts.append(f"({conditions[0]['message']})")
    return "  ".join(parts)


@click.command("wait")
@click.argument("name")
@click.option("--state", default="STATUS_READY", show_default=True, help="The state to wait for.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds before giving up (exit status 1).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines, only the result.")
@click.pass_context
def wait_for(ctx: click.Context, name: str, state: str, timeout: float, quiet: bool) -> None:
    """Wait until a deployment reaches a state (fails fast on STATUS_FAILED).

    While it waits it prints (on stderr) each change of state, ready/desired replicas and replica phases,
    with the time elapsed."""
    started = time.monotonic()

    def show(item: Deployment) -> None:
        if not quiet:
            click.echo(progress_line(item, time.monotonic() - started), err=True)

    try:
        item = client(ctx).deployments.wait(name, state, timeout=timeout, on_progress=show)
    except TideError as exc:
        if exc.resource is None:  # not the wait's own failure: the group reports it
            raise
        raise click.ClickException(f"{exc.message}\n{describe_deployment(exc.resource, time.time())}") from None
    click.echo(f"deployment/{resource_id(item)} {item['status']['status']}")
