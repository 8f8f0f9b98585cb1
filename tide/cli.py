"""The `tide` command line: run the server, manage deployments, build the demo model, move weights."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import httpx
import yaml

from tide import __version__
from tide.config import (
    DEFAULT_API_PORT,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_LOGS_PER_DEPLOYMENT,
    ServerConfig,
    default_data_dir,
    read_client_token,
)
from tide.http_limits import ConnectionLimits

if TYPE_CHECKING:
    from tide.backends.ray import RayOptions
    from tide.gateway.keys import GatewayKeys


class ApiClient:
    """A thin client for the management API; errors come back as the API's own message."""

    def __init__(self, server: str, token: str | None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/") + "/v1alpha1/inference", headers=headers, timeout=30)
        self.server = server

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(method, path, json=body, params=params)
        except httpx.ConnectError:
            raise click.ClickException(
                f"cannot reach the Tide API at {self.server}: is `tide up` running? (or set --server / TIDE_API_URL)"
            ) from None
        except httpx.HTTPError as exc:  # dropped, timed out, reset: say so, no traceback
            raise click.ClickException(
                f"{method} {path}: the connection to the Tide API at {self.server} failed ({type(exc).__name__}: "
                f"{exc or 'no detail'}); the request may or may not have been applied"
            ) from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                field = f" [{error['field']}]" if error.get("field") else ""
                message = f"{error['message']}{field}"
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise click.ClickException(f"{response.status_code}: {message}")
        if "warning" in response.headers:  # e.g. a deprecated spec shape: the API says how to write it now
            click.echo(f"warning: {response.headers['warning']}", err=True)
        return response.json()

    def list_all(self, path: str, key: str) -> list[Any]:
        """Every item of a paged list route (under `key`: `deployments`, `capacityClaims`), following
        `nextPageToken` (the largest pages the API serves)."""
        items: list[Any] = []
        params: dict[str, Any] = {"pageSize": 1000}
        while True:
            page = self.call("GET", path, params=params)
            items += page[key]
            token = page.get("nextPageToken")
            if not token:
                return items
            params = {"pageSize": 1000, "pageToken": token}


def _client(ctx: click.Context) -> ApiClient:
    opts = ctx.find_root().obj
    token = read_client_token(opts["data_dir"])
    return ApiClient(opts["server"], token)


@click.group()
@click.version_option(__version__, "--version", prog_name="tide", message="%(prog)s %(version)s")
@click.option(
    "--server",
    envvar="TIDE_API_URL",
    default=f"http://127.0.0.1:{DEFAULT_API_PORT}",
    show_default=True,
    help="Management API URL.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (default: $TIDE_DATA_DIR or ~/.tide).",
)
@click.pass_context
def main(ctx: click.Context, server: str, data_dir: Path | None) -> None:
    """Tide: deploy models from a bucket, serve them behind an OpenAI-compatible gateway, autoscale them."""
    ctx.obj = {"server": server, "data_dir": (data_dir or default_data_dir()).expanduser()}


F = TypeVar("F", bound=Callable[..., Any])


class DurationType(click.ParamType):
    """A duration as the API writes them ("90s", "10m"); "0" turns the thing off (None)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        from tide.spec.durations import parse_duration
        from tide.spec.errors import SpecError

        if value is None or isinstance(value, float):
            return value or None
        text = str(value).strip()
        try:
            seconds = float(text)  # a bare number is seconds ("0" turns the thing off)
        except ValueError:
            try:
                seconds = parse_duration(text, param.opts[0] if param and param.opts else "duration")
            except SpecError as error:
                self.fail(error.message, param, ctx)
        if seconds < 0:
            self.fail(f"{text!r} is negative", param, ctx)
        return seconds or None


_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SIZE_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


class SizeType(click.ParamType):
    """A size in bytes: "50GB", "500MiB", "1.5TB" or a bare number of bytes; "0" means no limit (None)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value or None
        text = str(value).strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
        unit = match.group(2).upper() if match else ""
        if match is None or unit not in _SIZE_UNITS:
            self.fail(f"{text!r} is not a size like 50GB, 500MiB or a number of bytes", param, ctx)
        return int(float(match.group(1)) * _SIZE_UNITS[unit]) or None


def api_keys_file_option(command: F) -> F:
    return click.option(
        "--api-keys-file",
        "api_keys_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Gateway API keys, one per line (re-read when the file changes): clients must send one as "
        "`Authorization: Bearer <key>` (the OpenAI client's api_key). Also $TIDE_GATEWAY_API_KEYS (comma-separated). "
        "Without either, the gateway is open.",
    )(command)


def gateway_keys(path: Path | None) -> GatewayKeys | None:
    from tide.gateway.keys import ApiKeyError, GatewayKeys

    try:
        return GatewayKeys.from_config(path)
    except ApiKeyError as error:
        raise click.BadParameter(str(error), param_hint="--api-keys-file") from None


def upstream_idle_timeout_option(command: F) -> F:
    return click.option(
        "--upstream-idle-timeout",
        "upstream_idle_timeout",
        type=DurationType(),
        default="10m",
        show_default=True,
        help="A replica that holds a request and sends nothing for this long is cut off (504, or an error event "
        "mid-stream) and the request cancelled on it; 0: never.",
    )(command)


def node_options(command: F) -> F:
    """The options of a process that runs replicas (`tide up`, `tide controller`), declared once."""
    options = [
        click.option(
            "--buckets-dir", type=click.Path(path_type=Path), default=None, help="Root of local `file` buckets."
        ),
        click.option(
            "--drain-timeout", default=30.0, show_default=True, help="Seconds a removed replica may finish work."
        ),
        click.option(
            "--inventory",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="YAML of virtual instances (types, zones, classes) to schedule on instead of this machine.",
        ),
        click.option(
            "--cpu-slots", default=8, show_default=True, help="Replicas that fit on this machine without GPUs."
        ),
        click.option(
            "--warm-pool",
            type=click.IntRange(min=0),
            envvar="TIDE_WARM_POOL",
            default=1,
            show_default=True,
            help="Built-in engine processes kept started ahead of need (runtime imported, no model): a replica "
            "start takes one and only loads its weights. 0: none. Local backend only.",
        ),
        click.option(
            "--usage-retention",
            type=DurationType(),
            default="90d",
            show_default=True,
            help="Replica runs (the usage history behind GET /usage) that ended longer ago are deleted; 0: keep all.",
        ),
        click.option(
            "--log-retention",
            type=DurationType(),
            default="7d",
            show_default=True,
            help="Replica logs of deleted deployments older than this are removed; 0: keep them.",
        ),
        click.option(
            "--logs-per-deployment",
            type=click.IntRange(min=1),
            default=DEFAULT_LOGS_PER_DEPLOYMENT,
            show_default=True,
            help="Replica log files kept per deployment (a crash loop adds one per try); running replicas' always.",
        ),
        click.option(
            "--cache-budget",
            type=SizeType(),
            default="50GB",
            show_default=True,
            help="Size of the node's weights cache: least recently used weights no replica uses are evicted "
            "beyond it; 0: no limit.",
        ),
        click.option(
            "--max-header-bytes",
            type=click.IntRange(min=1024),
            default=ConnectionLimits.max_head_bytes,
            show_default=True,
            help="Request line + headers a client may send, on the gateway and API ports (beyond: 431).",
        ),
        click.option(
            "--max-headers",
            type=click.IntRange(min=1),
            default=ConnectionLimits.max_headers,
            show_default=True,
            help="Header fields per request (beyond: 431).",
        ),
        click.option(
            "--header-timeout",
            type=DurationType(),
            default=f"{ConnectionLimits.head_timeout_s:g}s",
            show_default=True,
            help="Time a client has to send its request headers (then 408).",
        ),
        click.option(
            "--idle-timeout",
            type=DurationType(),
            default=f"{ConnectionLimits.idle_timeout_s:g}s",
            show_default=True,
            help="A keep-alive connection with no request in progress is closed after this.",
        ),
        click.option(
            "--max-unfinished-connections",
            type=click.IntRange(min=1),
            default=ConnectionLimits.max_unfinished,
            show_default=True,
            help="Connections per port whose request headers are not complete yet; more are refused (503).",
        ),
        click.option(
            "--backend",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="Where replicas run: child processes of this machine, or Ray actors on a Ray cluster's nodes.",
        ),
        click.option(
            "--ray-address",
            envvar="TIDE_RAY_ADDRESS",
            default=None,
            help="With --backend ray: the cluster's GCS address (host:port); this machine must be one of its nodes.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def node_config(
    ctx: click.Context,
    *,
    buckets_dir: Path | None,
    drain_timeout: float,
    inventory: Path | None,
    cpu_slots: int,
    usage_retention: float | None,
    log_retention: float | None,
    logs_per_deployment: int,
    cache_budget: int | None,
    max_header_bytes: int,
    max_headers: int,
    header_timeout: float | None,
    idle_timeout: float | None,
    max_unfinished_connections: int,
    warm_pool: int = 0,
    **server: Any,
) -> ServerConfig:
    """The ServerConfig of `node_options` (all of them but --backend and --ray-address: `node_backend`)."""
    return ServerConfig(
        data_dir=ctx.find_root().obj["data_dir"],
        buckets_dir=buckets_dir,
        drain_timeout_s=drain_timeout,
        inventory_path=inventory,
        cpu_slots=cpu_slots,
        usage_retention_s=usage_retention,
        log_retention_s=log_retention,
        logs_per_deployment=logs_per_deployment,
        cache_budget_bytes=cache_budget,
        connection_limits=connection_limits(
            max_header_bytes, max_headers, header_timeout, idle_timeout, max_unfinished_connections
        ),
        warm_pool=warm_pool,
        **server,
    )


def connection_limits(
    max_header_bytes: int, max_headers: int, header_timeout: float | None, idle_timeout: float | None, unfinished: int
) -> ConnectionLimits:
    if header_timeout is None or idle_timeout is None:
        raise click.BadParameter("must be more than 0", param_hint="--header-timeout / --idle-timeout")
    return ConnectionLimits(max_header_bytes, max_headers, header_timeout, idle_timeout, unfinished)


def node_backend(backend: str, ray_address: str | None, inventory: Path | None) -> RayOptions | None:
    """None for the local backend; the Ray cluster to join for `--backend ray`."""
    from tide.backends.ray import RayOptions

    if backend != "ray":
        return None
    if not ray_address:
        raise click.UsageError("--backend ray needs --ray-address (or TIDE_RAY_ADDRESS): the cluster's host:port")
    if inventory is not None:
        raise click.UsageError("--inventory is for the local backend; with --backend ray the nodes are the inventory")
    return RayOptions(address=ray_address)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the gateway and API listen on.")
@click.option("--gateway-port", default=DEFAULT_GATEWAY_PORT, show_default=True, type=int)
@click.option("--api-port", default=DEFAULT_API_PORT, show_default=True, type=int)
@click.option("--database-url", default=None, help="SQLAlchemy URL (default: SQLite in the data directory).")
@upstream_idle_timeout_option
@api_keys_file_option
@node_options
@click.pass_context
def up(
    ctx: click.Context,
    backend: str,
    ray_address: str | None,
    upstream_idle_timeout: float | None,
    api_keys_file: Path | None,
    **options: Any,
) -> None:
    """Start Tide: management API, gateway and controller in one process."""
    from tide.server import run_server

    ray = node_backend(backend, ray_address, options["inventory"])
    gateway_keys(api_keys_file)  # an unusable keys file is a usage error now, not a traceback later
    config = node_config(ctx, upstream_idle_timeout_s=upstream_idle_timeout, api_keys_file=api_keys_file, **options)
    run_server(config, ray=ray)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API and gateway channel listen on.")
@click.option("--api-port", default=DEFAULT_API_PORT, show_default=True, type=int)
@click.option(
    "--database-url", default=None, help="SQLAlchemy URL shared by all controllers (Postgres, or a SQLite file)."
)
@node_options
@click.option("--lease-ttl", default=10.0, show_default=True, help="Leader lease TTL: a standby takes over within it.")
@click.pass_context
def controller(ctx: click.Context, backend: str, ray_address: str | None, lease_ttl: float, **options: Any) -> None:
    """Run a controller (with the management API and the gateway channel); the lease holder acts."""
    from tide.server import run_controller

    ray = node_backend(backend, ray_address, options["inventory"])
    run_controller(node_config(ctx, **options), lease_ttl_s=lease_ttl, ray=ray)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--api-port", default=DEFAULT_API_PORT, show_default=True, type=int)
@click.option("--database-url", default=None, help="The controllers' SQLAlchemy URL.")
@click.option(
    "--inventory",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The same inventory YAML the controllers use (for validation).",
)
@click.option("--cpu-slots", default=8, show_default=True)
@click.pass_context
def api(
    ctx: click.Context, host: str, api_port: int, database_url: str | None, inventory: Path | None, cpu_slots: int
) -> None:
    """Run the management API alone over the controllers' database."""
    from tide.server import run_api

    config = ServerConfig(
        data_dir=ctx.find_root().obj["data_dir"],
        host=host,
        api_port=api_port,
        database_url=database_url,
        inventory_path=inventory,
        cpu_slots=cpu_slots,
    )
    run_api(config)


@main.command()
@click.option(
    "--controller",
    "controllers",
    multiple=True,
    required=True,
    help="Controller URL (repeat for standbys): the gateway follows whichever holds the lease.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_GATEWAY_PORT, show_default=True, type=int)
@upstream_idle_timeout_option
@api_keys_file_option
@click.pass_context
def gateway(
    ctx: click.Context,
    controllers: tuple[str, ...],
    host: str,
    port: int,
    upstream_idle_timeout: float | None,
    api_keys_file: Path | None,
) -> None:
    """Run a gateway that follows the controller (routes pushed, load reported). Token: $TIDE_API_TOKEN."""
    from tide.gateway.follower import run_gateway

    token = read_client_token(ctx.find_root().obj["data_dir"])
    api_keys = gateway_keys(api_keys_file)
    run_gateway(host, port, list(controllers), token, upstream_idle_timeout_s=upstream_idle_timeout, api_keys=api_keys)


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


@main.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, help="YAML/JSON spec file(s), or - for stdin.")
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Create or update deployments from spec files (the YAML mirrors the API's JSON spec)."""
    client = _client(ctx)
    documents = [(path, index, doc) for path in files for index, doc in enumerate(_load_documents(path), 1)]
    existing = client.list_all("/deployments", "deployments")
    for done, (path, index, doc) in enumerate(documents):
        try:
            _apply_document(client, doc, existing)
        except click.ClickException as exc:
            applied = f"{done} of {len(documents)} documents applied before it" if done else "nothing applied"
            raise click.ClickException(
                f"{path} document {index} ({doc.get('name', '?')}): {exc.message}\n{applied}"
            ) from None


def _apply_document(client: ApiClient, doc: dict[str, Any], existing: list[dict[str, Any]]) -> None:
    doc = _spec_document(doc)
    target = _match_existing(doc, existing)
    if target is None:
        created = client.call("POST", "/deployments", doc)["deployment"]
        click.echo(f"deployment/{_id(created)} created")
        existing.append(created)
    else:
        before = next(d["status"]["generation"] for d in existing if _id(d) == target)
        updated = client.call("PATCH", f"/deployments/{target}", {**doc, "id": target})["deployment"]
        changed = "configured" if updated["status"]["generation"] != before else "unchanged"
        click.echo(f"deployment/{target} {changed}")


def _id(resource: dict[str, Any]) -> str:
    """A resource as the API returns it (`{"spec": {"id", ...}, "status": {...}}`): its id."""
    return str(resource["spec"]["id"])


def _spec_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec to send from a file: a plain spec, or what `get -o yaml` printed (`deployment: {spec, status}`
    or `{spec, status}`), so a fetched resource can be edited and re-applied."""
    inner = doc.get("deployment", doc)
    if isinstance(inner, dict) and isinstance(inner.get("spec"), dict):
        return dict(inner["spec"])
    return {k: v for k, v in doc.items() if k != "status"}


def _match_existing(doc: dict[str, Any], existing: list[dict[str, Any]]) -> str | None:
    if doc.get("id"):
        return str(doc["id"]) if any(_id(d) == doc["id"] for d in existing) else None
    named = [_id(d) for d in existing if d["spec"].get("name") == doc.get("name")]
    if len(named) > 1:
        raise click.ClickException(
            f"several deployments are named {doc.get('name')!r} ({', '.join(named)}): add `id:` to the spec"
        )
    return named[0] if named else None


@main.group()
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
        _id(item),
        spec.get("model", {}).get("name", spec["name"]),
        str(status.get("status", "")).removeprefix("STATUS_"),
        ready,
        str(spec.get("traffic", {}).get("weight", "")),
        spec["runtime"]["engine"],
        reason[:70],
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


@get.command("deployments")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_deployments(ctx: click.Context, output: str) -> None:
    """List deployments with state, ready/desired replicas and the first condition."""
    body = {"deployments": _client(ctx).list_all("/deployments", "deployments")}
    if output != "table":
        click.echo(_dump(body, output))
        return
    items = body["deployments"]
    headers = ["ID", "MODEL", "STATE", "READY", "WEIGHT", "ENGINE", "CONDITION"]
    click.echo(_table(headers, [_summary_row(i) for i in items]))


@get.command("gateways")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_gateways(ctx: click.Context, output: str) -> None:
    """List gateways with their authentication, routing strategy and endpoints."""
    body = _client(ctx).call("GET", "/gateways")
    if output != "table":
        click.echo(_dump(body, output))
        return
    click.echo(_table(["ID", "AUTH", "ROUTING", "ENDPOINTS"], [_gateway_row(g) for g in body["gateways"]]))


def _gateway_row(item: dict[str, Any]) -> list[str]:
    spec = item["spec"]
    auth = next((k for k in ("coreWeaveAuth", "apiKeyAuth") if k in spec), "?")
    routing = next((k for k in ("bodyBasedRouting", "headerBasedRouting", "pathBasedRouting") if k in spec), "?")
    if routing == "headerBasedRouting":
        routing += f" ({spec[routing].get('headerName', '')})"
    return [_id(item), auth, routing, " ".join(item["status"].get("endpoints") or [])]


@main.group()
def keys() -> None:
    """API keys of apiKeyAuth gateways: a key opens its own gateway only."""


@keys.command("create")
@click.argument("gateway")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option("--requests-per-minute", type=click.IntRange(min=1), default=None, help="Limit; past it: 429.")
@click.pass_context
def keys_create(ctx: click.Context, gateway: str, name: str, requests_per_minute: int | None) -> None:
    """Issue a key for GATEWAY. It is printed once: Tide keeps only its hash."""
    body: dict[str, Any] = {"name": name} if name else {}
    if requests_per_minute is not None:
        body["requestsPerMinute"] = requests_per_minute
    body = _client(ctx).call("POST", f"/gateways/{gateway}/keys", body)
    click.echo(f"apikey/{body['apiKey']['id']} created for gateway {gateway}; the key (shown once):", err=True)
    click.echo(body["key"])


@keys.command("list")
@click.argument("gateway")
@click.pass_context
def keys_list(ctx: click.Context, gateway: str) -> None:
    """The keys of GATEWAY (their ids, labels and first characters; never the keys)."""
    items = _client(ctx).call("GET", f"/gateways/{gateway}/keys")["apiKeys"]
    rows = [
        [k["id"], k["name"], k["prefix"] + "...", str(k.get("requestsPerMinute", "-")), k["createdAt"]] for k in items
    ]
    click.echo(_table(["ID", "NAME", "KEY", "PER MINUTE", "CREATED"], rows))


@keys.command("revoke")
@click.argument("gateway")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, gateway: str, key_id: str) -> None:
    """Revoke a key of GATEWAY: requests with it are refused within a second."""
    _client(ctx).call("DELETE", f"/gateways/{gateway}/keys/{key_id}")
    click.echo(f"apikey/{key_id} revoked")


@get.command("deployment")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_context
def get_deployment(ctx: click.Context, name: str, output: str) -> None:
    """One deployment: state, replicas with their phases, conditions and the last scaling decision."""
    body = _client(ctx).call("GET", f"/deployments/{name}")
    if output != "table":
        click.echo(_dump(body, output))
        return
    click.echo(describe_deployment(body["deployment"]))


def describe_deployment(item: dict[str, Any]) -> str:
    status = item.get("status") or {}
    spec = item["spec"]
    a = spec.get("autoscaling", {})
    lines = [
        f"Deployment {_id(item)} ({spec['name']}, model {spec.get('model', {}).get('name', '?')}, "
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
        lines.append(_table(["REPLICA", "PHASE", "PROGRESS", "LOAD", "URL", "MESSAGE"], rows))
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


def _dump(data: Any, output: str) -> str:
    return json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data, sort_keys=False)


@main.command()
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a deployment (its replicas finish in-flight requests first)."""
    item = _client(ctx).call("DELETE", f"/deployments/{name}")["deployment"]
    click.echo(f"deployment/{_id(item)} deleting")


@main.command()
@click.argument("name")
@click.option("--tail", default=100, show_default=True, help="Lines per replica.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new lines (each prefixed with its replica) until Ctrl-C."
)
@click.option("--interval", default=1.0, show_default=True, hidden=True, help="Seconds between polls with --follow.")
@click.pass_context
def logs(ctx: click.Context, name: str, tail: int, follow: bool, interval: float) -> None:
    """Show replica logs of a deployment."""
    client = _client(ctx)
    data = client.call("GET", f"/deployments/{name}/logs", params={"tail": tail})
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
            data = client.call("GET", f"/deployments/{name}/logs", params={"follow": "true", "after": after})
            for replica_id, text in data["replicas"].items():
                for line in text.splitlines():
                    click.echo(f"[{replica_id}] {line}")
            offsets.update(data["offsets"])
    except KeyboardInterrupt:
        pass


@main.command("wait")
@click.argument("name")
@click.option("--state", default="STATUS_READY", show_default=True)
@click.option("--timeout", default=300.0, show_default=True)
@click.pass_context
def wait_for(ctx: click.Context, name: str, state: str, timeout: float) -> None:
    """Wait until a deployment reaches a state (fails fast on STATUS_FAILED)."""
    client = _client(ctx)
    deadline = time.monotonic() + timeout
    while True:
        item = client.call("GET", f"/deployments/{name}")["deployment"]
        status = item.get("status") or {}
        current = status.get("status")
        # READY with no replica wanted (scaled to zero, disabled) is READY: there is nothing to wait for.
        serving = status.get("readyReplicas", 0) > 0 or status.get("desiredReplicas") == 0
        if current == state and (state != "STATUS_READY" or serving):
            click.echo(f"deployment/{_id(item)} {current}")
            return
        if current == "STATUS_FAILED" and state != current:
            raise click.ClickException(f"deployment {_id(item)} failed:\n{describe_deployment(item)}")
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out waiting for {state}:\n{describe_deployment(item)}")
        time.sleep(0.5)


@main.group()
def model() -> None:
    """Build models locally."""


@model.command("make-tiny")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True)
def make_tiny(directory: Path, seed: int) -> None:
    """Build the tiny demo model (random weights, a real tokenizer trained locally) into DIRECTORY."""
    from tide.model.tiny import make_tiny_model

    path = make_tiny_model(directory, seed=seed)
    click.echo(f"tiny model written to {path}")


def _register_optional_commands() -> None:
    try:
        from tide.sim.cli import sim_command
    except ImportError:
        return
    main.add_command(sim_command, "sim")


_register_optional_commands()

from tide.claims_cli import get_claims_command, usage_command  # noqa: E402
from tide.demo import demo_command  # noqa: E402
from tide.weights_cli import weights_group  # noqa: E402

main.add_command(demo_command, "demo")
main.add_command(weights_group, "weights")
main.add_command(usage_command, "usage")
get.add_command(get_claims_command, "claims")

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
