"""`tide weights push|pull`: move weights between a local directory, a bucket and the node cache."""

from __future__ import annotations

from pathlib import Path

import click

from tide.cli.root import TideGroup
from tide.config import default_data_dir
from tide.weights import StorageConfig, WeightsCache, WeightsError, parse_bucket_path, pull, push_directory
from tide.weights.progress_bar import ProgressBar


def _storage(ctx: click.Context) -> StorageConfig:
    data_dir: Path = (ctx.find_root().obj or {}).get("data_dir") or default_data_dir()
    config = StorageConfig.from_env()
    if config.local_root is None:
        config = StorageConfig.from_env(local_root=data_dir / "buckets")
    return config


def _bucket_path(text: str, argument: str) -> tuple[str, str]:
    try:
        return parse_bucket_path(text)
    except WeightsError as exc:
        raise click.BadParameter(exc.message, param_hint=argument) from None


@click.group("weights", cls=TideGroup)
def weights_group() -> None:
    """Upload weights to a bucket, or prefetch them into this node's cache."""


@weights_group.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("target")
@click.pass_context
def push(ctx: click.Context, directory: Path, target: str) -> None:
    """Upload DIRECTORY to TARGET (BUCKET/PATH) for bring-your-own-weights."""
    bucket, path = _bucket_path(target, "TARGET")
    try:
        storage = _storage(ctx)
        with ProgressBar(f"push {bucket}/{path}") as bar:
            total = push_directory(directory, bucket, path, storage, progress=bar)
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"pushed {total / 1e6:.1f} MB to {bucket}/{path}")


@weights_group.command("pull")
@click.argument("source")
@click.option(
    "--cache-dir", type=click.Path(path_type=Path), default=None, help="Node cache (default: DATA_DIR/cache)."
)
@click.pass_context
def pull_command(ctx: click.Context, source: str, cache_dir: Path | None) -> None:
    """Prefetch SOURCE (BUCKET/PATH) into this node's weights cache, e.g. before a traffic peak."""
    data_dir: Path = ctx.find_root().obj["data_dir"]
    bucket, path = _bucket_path(source, "SOURCE")
    try:
        cache = WeightsCache(cache_dir or data_dir / "cache")
        with ProgressBar(f"pull {bucket}/{path}") as bar:
            entry = pull(bucket, path, _storage(ctx), cache, progress=bar)
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"cached at {entry}")
