"""The `tide` command group and its global options; the commands are attached in `tide/cli/__init__.py`."""

from __future__ import annotations

from pathlib import Path

import click

from tide import __version__
from tide.config import DEFAULT_API_PORT, default_data_dir


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
