"""`tide model make-tiny`: build the tiny demo model locally."""

from __future__ import annotations

from pathlib import Path

import click

from tide.cli.root import TideGroup


@click.group(cls=TideGroup)
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
