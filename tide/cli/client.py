"""What every client command shares: the management API client, tables, JSON/YAML output."""

from __future__ import annotations

import json
from typing import Any

import click
import httpx
import yaml

from tide.config import read_client_token


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


def client(ctx: click.Context) -> ApiClient:
    opts = ctx.find_root().obj
    token = read_client_token(opts["data_dir"])
    return ApiClient(opts["server"], token)


def resource_id(resource: dict[str, Any]) -> str:
    """A resource as the API returns it (`{"spec": {"id", ...}, "status": {...}}`): its id."""
    return str(resource["spec"]["id"])


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def dump(data: Any, output: str) -> str:
    return json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data, sort_keys=False)
