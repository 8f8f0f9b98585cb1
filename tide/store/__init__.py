"""Durable desired state (specs) and observed status, over SQLAlchemy (SQLite by default)."""

from tide.store import (
    claims,  # noqa: F401  (registers the capacity_claims and replica_runs tables)
    gateways,  # noqa: F401  (registers the gateways table)
    published,  # noqa: F401  (registers the published_state table)
)
from tide.store.database import Conflict, DeploymentRecord, NotFound, Store

__all__ = ["Conflict", "DeploymentRecord", "NotFound", "Store"]
