"""What every client command shares: the SDK client for the root options, SDK errors as CLI errors,
tables, JSON/YAML output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
import yaml

from tide.config import read_client_token
from tide.sdk import Client, TideError
from tide.sdk.errors import UNREACHABLE


def client(ctx: click.Context) -> Client:
    """The SDK client for `--server` and the token (`$TIDE_API_TOKEN` or DATA_DIR/api-token); the API's
    warnings (e.g. a deprecated spec shape) go to stderr."""
    opts = ctx.find_root().obj
    token = read_client_token(opts["data_dir"]) or ""
    return Client(opts["server"], token, on_warning=lambda text: click.echo(f"warning: {text}", err=True))


def error_text(exc: TideError) -> str:
    """A TideError as the CLI says it: the API's status and message (with the field), or what to check."""
    if exc.code == UNREACHABLE:
        return f"{exc.message}: is `tide up` running? (or set --server / TIDE_API_URL)"
    return str(exc)


class CliError(click.ClickException):
    """A TideError as a ClickException (exit status 1, the message on stderr, no traceback)."""

    def __init__(self, exc: TideError) -> None:
        super().__init__(error_text(exc))
        self.error = exc


def resource_id(resource: Mapping[str, Any]) -> str:
    """A resource as the API returns it (`{"spec": {"id", ...}, "status": {...}}`): its id."""
    return str(resource["spec"]["id"])


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def dump(data: Any, output: str) -> str:
    return json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data, sort_keys=False)
