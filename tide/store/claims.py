"""Capacity claims and replica runs (usage metering), on the store's database.

Two tables on the same `MetaData` as `tide.store.database`, so `Store(url)` creates them with the rest
(`tide.store` imports this module before anyone can build a `Store`):

- `capacity_claims`: one row per claim, its validated spec as JSON (`{"resources": {...}}`, camelCase as
  API.md writes it). Claims are served first come, first served: `list_claims` is in creation order.
- `replica_runs`: one row per run of a replica (start, stop, GPUs, instance). `RunLog.intervals` feeds
  `tide.scheduling.gpu_minutes`. Open runs have `stopped_at` NULL; after a crash, `close_all_open(now)` at
  the restart closes them (the replicas died with the process), so nothing is billed forever. Runs that
  ended longer ago than the usage retention are deleted by `prune` (the controller does it hourly).

Plain SQLAlchemy Core, as the rest of the store: the same code on SQLite and Postgres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Table, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import JSON

from tide.scheduling import CAPACITY_TYPE_SERVERLESS, Claim, ClaimSpec, RunInterval
from tide.store.database import Conflict, NotFound, Store, metadata
from tide.store.engine import write_transaction
from tide.store.paging import Cursor, page_query, split_page

capacity_claims = Table(
    "capacity_claims",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

replica_runs = Table(
    "replica_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(63), nullable=False),
    Column("replica_id", String(255), nullable=False),
    Column("gpus", Integer, nullable=False),
    Column("instance_id", String(255), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("stopped_at", Float, nullable=True),
    Index("ix_replica_runs_replica_open", "replica_id", "stopped_at"),
    Index("ix_replica_runs_started_at", "started_at"),
)


@dataclass
class ClaimRecord:
    id: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float

    def to_claim(self) -> Claim:
        """The scheduler's view of the stored (already validated) spec; no inventory check here, so a
        claim whose zone has since gone away still loads (it just finds no instances)."""
        resources = self.spec.get("resources") or {}
        return Claim(
            id=self.id,
            spec=ClaimSpec(
                instance_type=str(resources.get("instanceId", "")),
                instance_count=int(resources.get("instanceCount", 0)),
                capacity_type=str(resources.get("capacityType", CAPACITY_TYPE_SERVERLESS)),
                zones=tuple(str(z) for z in resources.get("zones") or ()),
            ),
        )


def claim_spec_json(spec: ClaimSpec) -> dict[str, Any]:
    """A validated `ClaimSpec` as stored and returned by the API (every default filled in)."""
    return {
        "resources": {
            "instanceId": spec.instance_type,
            "instanceCount": spec.instance_count,
            "capacityType": spec.capacity_type,
            "zones": list(spec.zones),
        }
    }


def _claim(row: Any) -> ClaimRecord:
    return ClaimRecord(id=row.id, spec=dict(row.spec), created_at=row.created_at, updated_at=row.updated_at)


def _read_claim(conn: Connection, claim_id: str) -> ClaimRecord:
    row = conn.execute(select(capacity_claims).where(capacity_claims.c.id == claim_id)).first()
    if row is None:
        raise NotFound(claim_id)
    return _claim(row)


class ClaimStore:
    """CRUD of capacity claims. Specs are validated by the caller (`tide.scheduling.validate_claim`)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def list_claims(self) -> list[ClaimRecord]:
        """In creation order: the order claims are served in."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(capacity_claims).order_by(capacity_claims.c.created_at, capacity_claims.c.id))
            return [_claim(r) for r in rows]

    def list_claims_page(self, page_size: int, after: Cursor | None = None) -> tuple[list[ClaimRecord], Cursor | None]:
        """One page in creation order, and where the next one starts (None: this was the last)."""
        with self.engine.connect() as conn:
            rows = conn.execute(page_query(capacity_claims, page_size, after)).all()
        page, cursor = split_page(rows, page_size)
        return [_claim(r) for r in page], cursor

    def claims(self) -> list[Claim]:
        """`list_claims` as the scheduler's `Claim`s, ready for `assign_claims`."""
        return [record.to_claim() for record in self.list_claims()]

    def get_claim(self, claim_id: str) -> ClaimRecord:
        with self.engine.connect() as conn:
            return _read_claim(conn, claim_id)

    def create_claim(self, claim_id: str, spec: dict[str, Any], now: float) -> ClaimRecord:
        """Insert; `Conflict` when the id is taken (the primary key decides, so racing creators cannot both win)."""
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(capacity_claims.insert().values(id=claim_id, spec=spec, created_at=now, updated_at=now))
                return _read_claim(conn, claim_id)
        except IntegrityError as exc:
            raise Conflict(f"a capacity claim with id {claim_id!r} already exists") from exc

    def update_claim(self, claim_id: str, spec: dict[str, Any], now: float) -> ClaimRecord:
        """Replace the spec (keeps `created_at`, hence the claim's place in the queue); `NotFound` if absent."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                capacity_claims.update().where(capacity_claims.c.id == claim_id).values(spec=spec, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(claim_id)
            return _read_claim(conn, claim_id)

    def delete_claim(self, claim_id: str) -> ClaimRecord:
        """Remove and return the claim as it was; `NotFound` if absent."""
        with write_transaction(self.engine) as conn:
            record = _read_claim(conn, claim_id)
            conn.execute(capacity_claims.delete().where(capacity_claims.c.id == claim_id))
            return record


class RunLog:
    """When each replica ran, on how many GPUs: the input of usage metering.

    The controller calls `run_started` when a replica is placed (it holds its GPUs from then on, loading
    included) and `run_stopped` when it has stopped and released them; at startup, `close_all_open` first.
    """

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def run_started(self, deployment_id: str, replica_id: str, gpus: int, instance_id: str, now: float) -> None:
        """Open a run. Idempotent: a second call for a replica already running with the same deployment,
        GPUs and instance changes nothing (a split run would bill an extra started minute). If the replica
        has an open run that differs (it moved), that run is closed at `now` first."""
        with write_transaction(self.engine) as conn:
            open_rows = conn.execute(
                select(replica_runs)
                .where(replica_runs.c.replica_id == replica_id, replica_runs.c.stopped_at.is_(None))
                .with_for_update()
            ).all()
            same = [
                r
                for r in open_rows
                if r.deployment_id == deployment_id and r.gpus == gpus and r.instance_id == instance_id
            ]
            if same and len(open_rows) == 1:
                return
            for row in open_rows:
                conn.execute(
                    replica_runs.update().where(replica_runs.c.id == row.id).values(stopped_at=max(now, row.started_at))
                )
            conn.execute(
                replica_runs.insert().values(
                    deployment_id=deployment_id,
                    replica_id=replica_id,
                    gpus=gpus,
                    instance_id=instance_id,
                    started_at=now,
                    stopped_at=None,
                )
            )

    def run_stopped(self, replica_id: str, now: float) -> int:
        """Close the replica's open run at `now` (never before it started); returns how many were closed
        (0 when it was not running: stopping twice is harmless)."""
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                select(replica_runs.c.id, replica_runs.c.started_at)
                .where(replica_runs.c.replica_id == replica_id, replica_runs.c.stopped_at.is_(None))
                .with_for_update()
            ).all()
            for row in rows:
                conn.execute(
                    replica_runs.update().where(replica_runs.c.id == row.id).values(stopped_at=max(now, row.started_at))
                )
            return len(rows)

    def close_all_open(self, now: float) -> int:
        """After a restart: every run still open was ended by the crash; close them at `now` (the restart
        time; the best bound known). Returns how many were closed."""
        with write_transaction(self.engine) as conn:
            closed = conn.execute(
                replica_runs.update()
                .where(replica_runs.c.stopped_at.is_(None), replica_runs.c.started_at <= now)
                .values(stopped_at=now)
            ).rowcount
            # Runs "started" after now (a clock that went backwards) are closed as zero-length.
            closed += conn.execute(
                replica_runs.update()
                .where(replica_runs.c.stopped_at.is_(None))
                .values(stopped_at=replica_runs.c.started_at)
            ).rowcount
            return int(closed)

    def prune(self, before: float) -> int:
        """Delete runs that ended before `before` (the usage retention horizon); open runs are kept
        however old. Returns how many were deleted."""
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(
                replica_runs.delete().where(replica_runs.c.stopped_at.is_not(None), replica_runs.c.stopped_at < before)
            ).rowcount
            return int(deleted)

    def intervals(self, start: float, end: float) -> list[RunInterval]:
        """Runs that overlap [start, end) (open ones with `stopped_at` None), oldest first."""
        query = (
            select(replica_runs)
            .where(
                replica_runs.c.started_at < end,
                or_(replica_runs.c.stopped_at.is_(None), replica_runs.c.stopped_at > start),
            )
            .order_by(replica_runs.c.started_at, replica_runs.c.id)
        )
        with self.engine.connect() as conn:
            return [
                RunInterval(
                    deployment_id=r.deployment_id,
                    replica_id=r.replica_id,
                    gpus=r.gpus,
                    started_at=r.started_at,
                    stopped_at=r.stopped_at,
                )
                for r in conn.execute(query)
            ]

    def open_runs(self) -> list[tuple[str, str, int, str, float]]:
        """`(deployment_id, replica_id, gpus, instance_id, started_at)` of every open run, oldest first: lets
        a controller reconcile the log with the replicas it actually has."""
        query = (
            select(replica_runs)
            .where(replica_runs.c.stopped_at.is_(None))
            .order_by(replica_runs.c.started_at, replica_runs.c.id)
        )
        with self.engine.connect() as conn:
            return [(r.deployment_id, r.replica_id, r.gpus, r.instance_id, r.started_at) for r in conn.execute(query)]
