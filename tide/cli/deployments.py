"""The client commands of deployments and gateways: apply, get, delete, logs, wait, keys."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import yaml

from tide.cli.client import ApiClient, client, dump, resource_id, table


def _load_documents(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path} is not valid YAML: {exc}") from None
    for doc in docs:
        if not isinstance(doc, dict):
            raise click.ClickException(f"{path}: each document must be a deployment spec (a mapping)")
    return docs


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, help="YAML/JSON spec file(s), or - for stdin.")
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Create or update deployments from spec files (the YAML mirrors the API's JSON spec)."""
    api = client(ctx)
    documents = [(path, index, doc) for path in files for index, doc in enumerate(_load_documents(path), 1)]
    existing = api.list_all("/deployments", "deployments")
    for done, (path, index, doc) in enumerate(documents):
        try:
            _apply_document(api, doc, existing)
        except click.ClickException as exc:
            applied = f"{done} of {len(documents)} documents applied before it" if done else "nothing applied"
            raise click.ClickException(
                f"{path} document {index} ({doc.get('name', '?')}): {exc.message}\n{applied}"
            ) from None


def _apply_document(api: ApiClient, doc: dict[str, Any], existing: list[dict[str, Any]]) -> None:
    doc = _spec_document(doc)
    target = _match_existing(doc, existing)
    if target is None:
        created = api.call("POST", "/deployments", doc)["deployment"]
        click.echo(f"deployment/{resource_id(created)} created")
        existing.append(created)
    else:
        before = next(d["status"]["generation"] for d in existing if resource_id(d) == target)
        updated = api.call("PATCH", f"/deployments/{target}", {**doc, "id": target})["deployment"]
        changed = "configured" if updated["status"]["generation"] != before else "unchanged"
        click.echo(f"deployment/{target} {changed}")


def _spec_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec to send from a file: a plain spec, or what `get -o yaml` printed (`deployment: {spec, status}`
    or `{spec, status}`), so a fetched resource can be edited and re-applied."""
    inner = doc.get("deployment", doc)
    if isinstance(inner, dict) and isinstance(inner.get("spec"), dict):
        return dict(inner["spec"])
    return {k: v for k, v in doc.items() if k != "status"}


def _match_existing(doc: dict[str, Any], existing: list[dict[str, Any]]) -> str | None:
    if doc.get("id"):
        return str(doc["id"]) if any(resource_id(d) == doc["id"] for d in existing) else None
    named = [resource_id(d) for d in existing if d["spec"].get("name") == doc.get("name")]
    if len(named) > 1:
        raise click.ClickException(
            f"several deployments are named {doc.get('name')!r} ({', '.join(named)}): add `id:` to the spec"
        )
    return named[0] if named else None


@click.group()
def get() -> None:
    """Show deployments."""


def _summary_row(item: dict[str, Any]) -> list[str]:
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
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_deployments(ctx: click.Context, output: str) -> None:
    """List deployments with state, ready/desired replicas and the first condition."""
    body = {"deployments": client(ctx).list_all("/deployments", "deployments")}
    if output != "table":
        click.echo(dump(body, output))
        return
    items = body["deployments"]
    headers = ["ID", "MODEL", "STATE", "READY", "WEIGHT", "ENGINE", "CONDITION"]
    click.echo(table(headers, [_summary_row(i) for i in items]))


@get.command("gateways")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_gateways(ctx: click.Context, output: str) -> None:
    """List gateways with their authentication, routing strategy and endpoints."""
    body = client(ctx).call("GET", "/gateways")
    if output != "table":
        click.echo(dump(body, output))
        return
    click.echo(table(["ID", "AUTH", "ROUTING", "ENDPOINTS"], [_gateway_row(g) for g in body["gateways"]]))


def _gateway_row(item: dict[str, Any]) -> list[str]:
    spec = item["spec"]
    auth = next((k for k in ("coreWeaveAuth", "apiKeyAuth") if k in spec), "?")
    routing = next((k for k in ("bodyBasedRouting", "headerBasedRouting", "pathBasedRouting") if k in spec), "?")
    if routing == "headerBasedRouting":
        routing += f" ({spec[routing].get('headerName', '')})"
    return [resource_id(item), auth, routing, " ".join(item["status"].get("endpoints") or [])]


@click.group()
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
    body: dict[str, Any] = {"name": name} if name else {}
    if requests_per_minute is not None:
        body["requestsPerMinute"] = requests_per_minute
    if tokens_per_minute is not None:
        body["tokensPerMinute"] = tokens_per_minute
    body = client(ctx).call("POST", f"/gateways/{gateway}/keys", body)
    click.echo(f"apikey/{body['apiKey']['id']} created for gateway {gateway}; the key (shown once):", err=True)
    click.echo(body["key"])


@keys.command("list")
@click.argument("gateway")
@click.pass_context
def keys_list(ctx: click.Context, gateway: str) -> None:
    """The keys of GATEWAY (their ids, labels and first characters; never the keys)."""
    items = client(ctx).call("GET", f"/gateways/{gateway}/keys")["apiKeys"]
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
    client(ctx).call("DELETE", f"/gateways/{gateway}/keys/{key_id}")
    click.echo(f"apikey/{key_id} revoked")


@get.command("deployment")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_deployment(ctx: click.Context, name: str, output: str) -> None:
    """One deployment: state, replicas with their phases, conditions and the last scaling decision."""
    body = client(ctx).call("GET", f"/deployments/{name}")
    if output != "table":
        click.echo(dump(body, output))
        return
    click.echo(describe_deployment(body["deployment"]))


def describe_deployment(item: dict[str, Any]) -> str:
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
        lines.append("")
        rows = [
            [
                r["id"],
                r["phase"] + (" (draining)" if r.get("draining") else ""),
                _progress_text(r),
                _load_text(r["load"]) if "load" in r else "",
                r.get("url", ""),
                r.get("message", "")[:60],
            ]
            for r in replicas
        ]
        lines.append(table(["REPLICA", "PHASE", "PROGRESS", "LOAD", "URL", "MESSAGE"], rows))
    conditions = status.get("conditions") or []
    if conditions:
        lines.append("")
        lines.append("Conditions:")
        lines += [f"  {c['type']}: {c['message']}" for c in conditions]
    return "\n".join(lines)


def _load_text(load: dict[str, Any]) -> str:
    text = f"{load.get('runningRequests', 0)} running, {load.get('waitingRequests', 0)} waiting"
    if "kvCacheUsage" in load:
        text += f", KV cache {load['kvCacheUsage']:.0%}"
    if "prefixCacheHitRate" in load:
        text += f", prefix cache hits {load['prefixCacheHitRate']:.0%}"
    return text


def _progress_text(replica: dict[str, Any]) -> str:
    progress = replica.get("progress") or {}
    if "percent" in progress:
        return f"{progress['percent']:.0f}%"
    return ""


@click.command()
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a deployment (its replicas finish in-flight requests first)."""
    item = client(ctx).call("DELETE", f"/deployments/{name}")["deployment"]
    click.echo(f"deployment/{resource_id(item)} deleting")


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
    api = client(ctx)
    data = api.call("GET", f"/deployments/{name}/logs", params={"tail": tail})
    if not data["replicas"] and not follow:
        click.echo(f"no replica logs for {data['id']} yet")
    for replica_id, text in data["replicas"].items():
        click.secho(f"==> {replica_id} <==", bold=True)
        click.echo(text, nl=False)
    if not follow:
        return
    offsets: dict[str, int] = dict(data.get("offsets", {}))
    try:
        while True:
            time.sleep(interval)
            after = [f"{replica_id}:{offset}" for replica_id, offset in offsets.items()]
            data = api.call("GET", f"/deployments/{name}/logs", params={"follow": "true", "after": after})
            for replica_id, text in data["replicas"].items():
                for line in text.splitlines():
                    click.echo(f"[{replica_id}] {line}")
            offsets.update(data["offsets"])
    except KeyboardInterrupt:
        pass


@click.command("wait")
@click.argument("name")
@click.option("--state", default="STATUS_READY", show_default=True)
@click.option("--timeout", default=300.0, show_default=True)
@click.pass_context
def wait_for(ctx: click.Context, name: str, state: str, timeout: float) -> None:
    """Wait until a deployment reaches a state (fails fast on STATUS_FAILED)."""
    api = client(ctx)
    deadline = time.monotonic() + timeout
    while True:
        item = api.call("GET", f"/deployments/{name}")["deployment"]
        status = item.get("status") or {}
        current = status.get("status")
        # READY with no replica wanted (scaled to zero, disabled) is READY: there is nothing to wait for.
        serving = status.get("readyReplicas", 0) > 0 or status.get("desiredReplicas") == 0
        if current == state and (state != "STATUS_READY" or serving):
            click.echo(f"deployment/{resource_id(item)} {current}")
            return
        if current == "STATUS_FAILED" and state != current:
            raise click.ClickException(f"deployment {resource_id(item)} failed:\n{describe_deployment(item)}")
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out waiting for {state}:\n{describe_deployment(item)}")
        time.sleep(0.5)
