"""Server configuration: flags, then environment, then defaults. One place that knows the data directory layout."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from tide.http_limits import ConnectionLimits
from tide.timing import UPSTREAM_IDLE_TIMEOUT_S

DEFAULT_GATEWAY_PORT = 8080
DEFAULT_API_PORT = 8081
DEFAULT_USAGE_RETENTION_S = 90 * 86400.0
DEFAULT_LOG_RETENTION_S = 7 * 86400.0
DEFAULT_LOGS_PER_DEPLOYMENT = 20
DEFAULT_CACHE_BUDGET_BYTES = 50 * 10**9
# Parked replicas may hold this share of an instance's host memory; past it the least recently parked
# are stopped (the rest is for running engines, the weights cache and the system).
DEFAULT_PARKED_MEMORY_FRACTION = 0.5


def default_data_dir() -> Path:
    return Path(os.environ.get("TIDE_DATA_DIR", Path.home() / ".tide")).expanduser()


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    gateway_port: int = DEFAULT_GATEWAY_PORT
    api_port: int = DEFAULT_API_PORT
    database_url: str | None = None
    buckets_dir: Path | None = None
    cache_dir: Path | None = None
    cache_budget_bytes: int | None = DEFAULT_CACHE_BUDGET_BYTES  # None: no limit
    drain_timeout_s: float = 30.0
    inventory_path: Path | None = None  # a declared fleet of virtual instances instead of this machine
    cpu_slots: int = 8  # replicas of gpuCount 1 that fit on a machine without GPUs
    warm_pool: int = 0  # built-in engine processes started ahead of need (`tide up --warm-pool`, default 1 there)
    parked_memory_fraction: float = DEFAULT_PARKED_MEMORY_FRACTION  # of an instance's host memory, for parked replicas
    upstream_idle_timeout_s: float | None = UPSTREAM_IDLE_TIMEOUT_S  # None: never cut a quiet replica off
    usage_retention_s: float | None = DEFAULT_USAGE_RETENTION_S  # replica runs (usage) kept; None: forever
    log_retention_s: float | None = DEFAULT_LOG_RETENTION_S  # deleted deployments' replica logs; None: forever
    logs_per_deployment: int = DEFAULT_LOGS_PER_DEPLOYMENT  # crash-loop tries beyond these are removed
    api_keys_file: Path | None = None  # gateway API keys (tide.gateway.keys); also $TIDE_GATEWAY_API_KEYS
    # Header size/count, head deadline, idle keep-alive, unfinished connections: both ports (docs/LIMITS.md)
    connection_limits: ConnectionLimits = field(default_factory=ConnectionLimits)

    @property
    def db_url(self) -> str:
        return self.database_url or os.environ.get("TIDE_DATABASE_URL") or f"sqlite:///{self.data_dir / 'tide.db'}"

    @property
    def buckets_root(self) -> Path:
        env = os.environ.get("TIDE_BUCKETS_DIR")
        return self.buckets_dir or (Path(env) if env else self.data_dir / "buckets")

    @property
    def weights_cache_dir(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "api-token"


def prepare_data_dir(config: ServerConfig) -> None:
    """The data directory holds the API token, the database and replica logs (prompts, errors): only
    its owner reads it. Tightened on every start, so an install made before this rule is fixed too."""
    private_dir(config.data_dir)
    db = config.data_dir / "tide.db"
    if config.db_url == f"sqlite:///{db}":
        # SQLite gives its -wal and -shm files the database file's mode: create it 0600 before it opens.
        private_file(db)


def private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def private_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def load_or_create_token(config: ServerConfig) -> tuple[str, bool]:
    """(token, created). `TIDE_API_TOKEN` wins; else the token file; else a new one, written 0600."""
    env = os.environ.get("TIDE_API_TOKEN")
    if env:
        return env, False
    path = config.token_path
    if path.exists():
        return path.read_text().strip(), False
    token = "tide_" + secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def read_client_token(data_dir: Path) -> str | None:
    env = os.environ.get("TIDE_API_TOKEN")
    if env:
        return env
    path = data_dir / "api-token"
    return path.read_text().strip() if path.exists() else None
