"""The store: one table of deployments (spec + status), written before anything acts on it.

SQLAlchemy Core keeps the SQL portable: SQLite in the data directory by default, Postgres when a URL says
so (`postgresql+psycopg://...`; dialect details in `tide.store.engine`). Calls are synchronous and short;
async callers run them in a thread (`asyncio.to_thread`). Every method is safe against concurrent writers
in other threads or processes: creation relies on the primary key, read-then-write locks the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from tide.spec.legacy import migrate_spec, needs_migration
from tide.store.engine import create_tables, make_engine, write_transaction

metadata = MetaData()

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(63), nullable=False, index=True),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deleting", Boolean, nullable=False, default=False),
    Column("status", JSON, nullable=False),
)


class NotFound(KeyError):
    pass


class Conflict(ValueError):
    pass


@dataclass
class DeploymentRecord:
    id: str
    name: str
    spec: dict[str, Any]
    generation: int
    created_at: float
    updated_at: float
    deleting: bool = False
    status: dict[str, Any] = field(default_factory=dict)


def _record(row: Any) -> DeploymentRecord:
    return DeploymentRecord(
        id=row.id,
        name=row.name,
        spec=dict(row.spec),
        generation=row.generation,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleting=bool(row.deleting),
        status=dict(row.status or {}),
    )


def _read(conn: Connection, deployment_id: str) -> DeploymentRecord:
    # Read back inside the writing transaction: the caller sees what it wrote, as stored (JSON round trip).
    row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).first()
    if row is None:
        raise NotFound(deployment_id)
    return _record(row)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        create_tables(self.engine, metadata)
        self._migrate_specs()
        from tide.store.gateways import ensure_default_gateway  # its table registers on this metadata

        ensure_default_gateway(self.engine)

    def _migrate_specs(self) -> None:
        """Rewrite specs stored by a version before the hosted shape (tide.spec.legacy), once, in place.
        The generation stays: the deployment is the same, so its replicas are not rolled."""
        with self.engine.connect() as conn:
            old = [
                row.id
                for row in conn.execute(select(deployments.c.id, deployments.c.spec))
                if needs_migration(row.spec)
            ]
        if not old:
            return
        # Idempotent: two processes opening the same old store at once write the same result.
        with write_transaction(self.engine) as conn:
            for row in conn.execute(select(deployments.c.id, deployments.c.spec).where(deployments.c.id.in_(old))):
                if needs_migration(row.spec):
                    conn.execute(
                        deployments.update().where(deployments.c.id == row.id).values(spec=migrate_spec(row.spec))
                    )

    def close(self) -> None:
        self.engine.dispose()

    # -- deployments -------------------------------------------------------------------------------

    def list_deployments(self) -> list[DeploymentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(deployments).order_by(deployments.c.created_at, deployments.c.id))
            return [_record(r) for r in rows]

    def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        with self.engine.connect() as conn:
            return _read(conn, deployment_id)

    def create_deployment(self, deployment_id: str, spec: dict[str, Any], now: float) -> DeploymentRecord:
        row = {
            "id": deployment_id,
            "name": spec["name"],
            "spec": spec,
            "generation": 1,
            "created_at": now,
            "updated_at": now,
            "deleting": False,
            "status": {"state": "STATUS_CREATING", "conditions": []},
        }
        # Insert and let the primary key decide: a check-then-insert lets two racing creators both pass.
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(deployments.insert().values(**row))
                return _read(conn, deployment_id)
        except IntegrityError as exc:
            raise Conflict(f"a deployment with id {deployment_id!r} already exists") from exc

    def update_spec(self, deployment_id: str, spec: dict[str, Any], now: float) -> DeploymentRecord:
        with write_transaction(self.engine) as conn:
            # FOR UPDATE (Postgres; SQLite's IMMEDIATE already serializes) so two racing updates both count.
            row = conn.execute(select(deployments).where(deployments.c.id == deployment_id).with_for_update()).first()
            if row is None:
                raise NotFound(deployment_id)
            if row.deleting:
                raise Conflict(f"deployment {deployment_id!r} is being deleted")
            generation = row.generation + (0 if dict(row.spec) == spec else 1)
            conn.execute(
                deployments.update()
                .where(deployments.c.id == deployment_id)
                .values(spec=spec, name=spec["name"], generation=generation, updated_at=now)
            )
            return _read(conn, deployment_id)

    def mark_deleting(self, deployment_id: str, now: float) -> DeploymentRecord:
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                deployments.update().where(deployments.c.id == deployment_id).values(deleting=True, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(deployment_id)
            return _read(conn, deployment_id)

    def remove_deployment(self, deployment_id: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(deployments.delete().where(deployments.c.id == deployment_id))

    def set_status(self, deployment_id: str, status: dict[str, Any]) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(deployments.update().where(deployments.c.id == deployment_id).values(status=status))
