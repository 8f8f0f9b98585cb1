"""The store: one table of deployments (spec + status), written before anything acts on it.

SQLAlchemy Core keeps the SQL portable: SQLite in the data directory by default, Postgres when a URL says
so. Calls are synchronous and short; async callers run them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import json
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
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine

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


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"json_serializer": json.dumps}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- deployments -------------------------------------------------------------------------------

    def list_deployments(self) -> list[DeploymentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(deployments).order_by(deployments.c.created_at, deployments.c.id))
            return [_record(r) for r in rows]

    def get_deployment(self, deployment_id: str) -> DeploymentRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).first()
        if row is None:
            raise NotFound(deployment_id)
        return _record(row)

    def create_deployment(self, deployment_id: str, spec: dict[str, Any], now: float) -> DeploymentRecord:
        with self.engine.begin() as conn:
            if conn.execute(select(deployments.c.id).where(deployments.c.id == deployment_id)).first():
                raise Conflict(f"a deployment with id {deployment_id!r} already exists")
            conn.execute(
                deployments.insert().values(
                    id=deployment_id,
                    name=spec["name"],
                    spec=spec,
                    generation=1,
                    created_at=now,
                    updated_at=now,
                    deleting=False,
                    status={"state": "STATUS_CREATING", "conditions": []},
                )
            )
        return self.get_deployment(deployment_id)

    def update_spec(self, deployment_id: str, spec: dict[str, Any], now: float) -> DeploymentRecord:
        with self.engine.begin() as conn:
            row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).first()
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
        return self.get_deployment(deployment_id)

    def mark_deleting(self, deployment_id: str, now: float) -> DeploymentRecord:
        with self.engine.begin() as conn:
            result = conn.execute(
                deployments.update().where(deployments.c.id == deployment_id).values(deleting=True, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(deployment_id)
        return self.get_deployment(deployment_id)

    def remove_deployment(self, deployment_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(deployments.delete().where(deployments.c.id == deployment_id))

    def set_status(self, deployment_id: str, status: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(deployments.update().where(deployments.c.id == deployment_id).values(status=status))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the controller writes; NORMAL sync is durable across process crashes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
