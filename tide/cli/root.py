"""The `tide` command group and its global options; the commands are attached in `tide/cli/__init__.py`.

`TideGroup` is the class of every group of the CLI: its command list shows each command's whole first
paragraph (wrapped, never cut off with "..."), and an SDK error in any command becomes a CLI error (the
API's message on stderr, exit status 1) instead of a traceback."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click

from tide import __version__
from tide.cli.client import CliError
from tide.config import DEFAULT_API_PORT, default_data_dir
from tide.sdk import TideError

HELP_WIDTH = 120  # at most; narrower terminals wrap


def summary(command: click.Command) -> str:
    """What a command list says of `command`: its short help, else the first paragraph of its help."""
    if command.short_help:
        return command.short_help
    text = inspect.cleandoc(command.help or "").split("\f")[0]
    return " ".join(text.split("\n\n")[0].split())


class TideGroup(click.Group):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("max_content_width", HELP_WIDTH)
        super().__init__(*args, **kwargs)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TideError as exc:
            raise CliError(exc) from None


@click.group(cls=TideGroup)
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
