"""The commands that start servers: `tide up`, `controller`, `api`, `gateway`, and their options."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tide.config import (
    DEFAULT_API_PORT,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_LOGS_PER_DEPLOYMENT,
    DEFAULT_PARKED_MEMORY_FRACTION,
    ServerConfig,
    read_client_token,
)
from tide.http_limits import ConnectionLimits
from tide.timing import LEASE_TTL_S

if TYPE_CHECKING:
    from tide.backends.ray import RayOptions
    from tide.gateway.keys import GatewayKeys


F = TypeVar("F", bound=Callable[..., Any])


class DurationType(click.ParamType):
    """A duration as the API writes them ("90s", "10m"); "0" turns the thing off (None)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        from tide.errors import FieldError
        from tide.spec.durations import parse_duration_option

        if value is None or isinstance(value, float):
            return value or None
        text = str(value).strip()
        try:  # a bare number is seconds ("0" turns the thing off)
            seconds = parse_duration_option(text, param.opts[0] if param and param.opts else "duration")
        except FieldError as error:
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
            "start takes one and only loads its weights. 0: none. With --backend ray: spare replica hosts per node.",
        ),
        click.option(
            "--parked-memory",
            "parked_memory_fraction",
            type=click.FloatRange(min=0.0, max=1.0),
            default=DEFAULT_PARKED_MEMORY_FRACTION,
            show_default=True,
            help="Share of an instance's host memory that parked replicas may hold; beyond it the least "
            "recently parked are stopped. 0: parked replicas are stopped at once.",
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
    parked_memory_fraction: float = DEFAULT_PARKED_MEMORY_FRACTION,
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
        parked_memory_fraction=parked_memory_fraction,
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


@click.command()
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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API and gateway channel listen on.")
@click.option("--api-port", default=DEFAULT_API_PORT, show_default=True, type=int)
@click.option(
    "--database-url", default=None, help="SQLAlchemy URL shared by all controllers (Postgres, or a SQLite file)."
)
@node_options
@click.option(
    "--lease-ttl", default=LEASE_TTL_S, show_default=True, help="Leader lease TTL: a standby takes over within it."
)
@click.pass_context
def controller(ctx: click.Context, backend: str, ray_address: str | None, lease_ttl: float, **options: Any) -> None:
    """Run a controller (with the management API and the gateway channel); the lease holder acts."""
    from tide.server import run_controller

    ray = node_backend(backend, ray_address, options["inventory"])
    run_controller(node_config(ctx, **options), lease_ttl_s=lease_ttl, ray=ray)


@click.command()
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


@click.command()
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
