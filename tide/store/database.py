"""The store: one table of deployments (spec + status), written before anything acts on it.

SQLAlchemy Core keeps the SQL portable: SQLite in the data directory by default, Postgres when a URL says
so (`postgresql+psycopg://...`; dialect details in `tide.store.engine`). Calls are synchronous and short;
async callers run them in a thread (`asyncio.to_thread`). Every method is safe against concurrent writers
in other threads or processes: creation relies on the primary key, read-then-write locks the row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from tide.spec.legacy import migrate_spec, needs_migration
from tide.store.changes import ensure_counter, record_change
from tide.store.engine import create_tables, make_engine, write_transaction
from tide.store.paging import Cursor, page_query, split_page
from tide.store.schema import metadata

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
    # Keyset paging (tide.store.paging) seeks on this instead of sorting the whole table per page.
    Index("ix_deployments_created_at_id", "created_at", "id"),
)


# Idempotency-Key of a create -> the deployment it created (and a hash of the request, so a key reused for
# a different request is refused). Kept IDEMPOTENCY_TTL_S: long enough for any client's retries.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("deployment_id", String(63), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)
IDEMPOTENCY_TTL_S = 86400.0

# Many deployments' status from one JSON object {id: status}, in one statement (Store.set_statuses). Postgres
# needs the parameter cast to json (the column's type, which keeps key order); on SQLite a CAST AS JSON would
# mean numeric affinity, and UPDATE ... FROM needs SQLite 3.33 (older ones write row by row, still in one
# transaction).
_SET_STATUSES = {
    "postgresql": text(
        "UPDATE deployments SET status = s.value FROM json_each(CAST(:statuses AS json)) AS s WHERE deployments.id = s.key"
    ),
}
if sqlite3.sqlite_version_info >= (3, 33):
    _SET_STATUSES["sqlite"] = text(
        "UPDATE deployments SET status = s.value FROM json_each(:statuses) AS s WHERE deployments.id = s.key"
    )
_SET_STATUS_ROWS = (
    deployments.update()
    .where(deployments.c.id == bindparam("target_id"))
    .values(status=bindparam("new_status", type_=JSON))
)


@dataclass(frozen=True)
class IdempotentCreate:
    deployment_id: str
    request_hash: str


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
        ensure_counter(self.engine)
        self._migrate_specs()
        from tide.store.gateways import add_key_columns, ensure_default_gateway  # its tables register on metadata

        add_key_columns(self.engine)
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

    def deployment_created_times(self) -> dict[str, float]:
        """Every deployment's id and creation time, nothing decoded (housekeeping reads it every 10 s)."""
        with self.engine.connect() as conn:
            return {row[0]: float(row[1]) for row in conn.execute(select(deployments.c.id, deployments.c.created_at))}

    def deployment_versions(self) -> dict[str, tuple[int, float, bool, int]]:
        """Each deployment's (generation, updated_at, deleting, hash of its spec as stored): what tells a
        reader its desired state changed, read without decoding one spec or status."""
        spec_text = cast(deployments.c.spec, Text)
        query = select(
            deployments.c.id, deployments.c.generation, deployments.c.updated_at, deployments.c.deleting, spec_text
        )
        with self.engine.connect() as conn:
            return {row[0]: (int(row[1]), float(row[2]), bool(row[3]), hash(row[4])) for row in conn.execute(query)}

    def list_deployments_page(
        self, page_size: int, after: Cursor | None = None
    ) -> tuple[list[DeploymentRecord], Cursor | None]:
        """One page in creation order, and where the next one starts (None: this was the last)."""
        with self.engine.connect() as conn:
            rows = conn.execute(page_query(deployments, page_size, after)).all()
        page, cursor = split_page(rows, page_size)
        return [_record(r) for r in page], cursor

    def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        with self.engine.connect() as conn:
            return _read(conn, deployment_id)

    def get_deployments(self, deployment_ids: list[str]) -> list[DeploymentRecord]:
        """These deployments (those that exist), by primary key, in chunks that fit any driver's limits."""
        records = []
        with self.engine.connect() as conn:
            for start in range(0, len(deployment_ids), 500):
                chunk = deployment_ids[start : start + 500]
                records += [_record(r) for r in conn.execute(select(deployments).where(deployments.c.id.in_(chunk)))]
        return records

    def deployment_exists(self, deployment_id: str) -> bool:
        """A primary-key probe: nothing decoded."""
        with self.engine.connect() as conn:
            query = select(deployments.c.id).where(deployments.c.id == deployment_id)
            return conn.execute(query).first() is not None

    def deployments_named(self, name: str, limit: int = 2) -> list[DeploymentRecord]:
        """Up to `limit` deployments with this name (an indexed read; 2 is enough to tell "ambiguous")."""
        with self.engine.connect() as conn:
            query = select(deployments).where(deployments.c.name == name).order_by(deployments.c.id).limit(limit)
            return [_record(r) for r in conn.execute(query)]

    def idempotent_create(self, key: str, now: float) -> IdempotentCreate | None:
        """What an earlier create with this Idempotency-Key made, if it is recent enough to remember."""
        with self.engine.connect() as conn:
            row = conn.execute(select(idempotency_keys).where(idempotency_keys.c.key == key)).first()
        if row is None or row.created_at < now - IDEMPOTENCY_TTL_S:
            return None
        return IdempotentCreate(row.deployment_id, row.request_hash)

    def create_deployment(
        self,
        deployment_id: str,
        spec: dict[str, Any],
        now: float,
        idempotency: tuple[str, str] | None = None,
    ) -> DeploymentRecord:
        """`idempotency` (key, request hash) is recorded in the same transaction as the deployment, so two
        racing retries cannot both create one: the loser gets Conflict and finds the winner's key."""
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
                if idempotency is not None:
                    key, request_hash = idempotency
                    conn.execute(
                        idempotency_keys.delete().where(idempotency_keys.c.created_at < now - IDEMPOTENCY_TTL_S)
                    )
                    conn.execute(
                        idempotency_keys.insert().values(
                            key=key, deployment_id=deployment_id, request_hash=request_hash, created_at=now
                        )
                    )
                conn.execute(deployments.insert().values(**row))
                record_change(conn, deployment_id)
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
            record_change(conn, deployment_id)
            return _read(conn, deployment_id)

    def mark_deleting(self, deployment_id: str, now: float) -> DeploymentRecord:
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                deployments.update().where(deployments.c.id == deployment_id).values(deleting=True, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(deployment_id)
            record_change(conn, deployment_id)
            return _read(conn, deployment_id)

    def remove_deployment(self, deployment_id: str) -> None:
        with write_transaction(self.engine) as conn:
            if conn.execute(deployments.delete().where(deployments.c.id == deployment_id)).rowcount:
                record_change(conn, deployment_id)  # other readers of the feed learn it is gone

    def set_status(self, deployment_id: str, status: dict[str, Any]) -> None:
        self.set_statuses({deployment_id: status})

    def set_statuses(self, statuses: Mapping[str, dict[str, Any]]) -> None:
        """Several deployments' status in one transaction of one statement (a deployment gone meanwhile is
        skipped): the statuses one reconcile changed cost one commit, not one per deployment. They are
        encoded before the write lock is taken: on SQLite every other writer waits for that lock."""
        if not statuses:
            return
        try:  # the database's JSON parser takes no NaN or Infinity: such a status goes row by row, as before
            document: str | None = json.dumps(statuses, allow_nan=False)
        except ValueError:
            document = None
        with write_transaction(self.engine) as conn:
            statement = _SET_STATUSES.get(conn.dialect.name)
            if statement is not None and document is not None:
                conn.execute(statement, {"statuses": document})
            else:
                rows = [{"target_id": key, "new_status": status} for key, status in statuses.items()]
                conn.execute(_SET_STATUS_ROWS, rows)
