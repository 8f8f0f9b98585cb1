"""The change feed: which deployments' desired state changed since a sequence number.

Every write of a deployment's spec or lifecycle (create, update, delete mark, removal) takes the next
number of one counter row in the same transaction and stamps it on the deployment's row in
`deployment_changes`. A reader (the controller, in this process or another one, on SQLite or Postgres)
keeps the highest number it has acted on and asks for the rows above it: one indexed query, proportional
to what changed, not to how many deployments exist.

Why one counter row and not an autoincrement: writers queue on the counter's row lock (Postgres) or the
database write lock (SQLite's BEGIN IMMEDIATE), so numbers commit in order and a reader can never see 7
before a 6 that is still in flight, which a sequence would allow. Status writes do not go through here:
the controller writes status and has no need to hear about its own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, String, Table, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from tide.store.engine import write_transaction
from tide.store.schema import metadata

COUNTER = "deployments"

change_counter = Table(
    "change_counter",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

deployment_changes = Table(
    "deployment_changes",
    metadata,
    Column("deployment_id", String(63), primary_key=True),
    Column("seq", BigInteger, nullable=False, index=True),
)


@dataclass(frozen=True)
class Changes:
    seq: int  # the highest change number seen: ask again with it
    deployment_ids: tuple[str, ...]  # changed since the number asked with (removed ones included)


def ensure_counter(engine: Engine) -> None:
    """The counter row, created once; racing processes on one Postgres both survive."""
    try:
        with write_transaction(engine) as conn:
            if conn.execute(select(change_counter.c.seq).where(change_counter.c.name == COUNTER)).first() is None:
                conn.execute(change_counter.insert().values(name=COUNTER, seq=0))
    except IntegrityError:
        pass  # another process inserted it first


def record_change(conn: Connection, deployment_id: str) -> int:
    """Stamp this deployment with the next change number, inside the caller's write transaction."""
    conn.execute(change_counter.update().where(change_counter.c.name == COUNTER).values(seq=change_counter.c.seq + 1))
    seq = int(conn.execute(select(change_counter.c.seq).where(change_counter.c.name == COUNTER)).scalar_one())
    updated = conn.execute(
        deployment_changes.update().where(deployment_changes.c.deployment_id == deployment_id).values(seq=seq)
    )
    if updated.rowcount == 0:  # no race: the counter's lock serializes every writer of this table
        conn.execute(deployment_changes.insert().values(deployment_id=deployment_id, seq=seq))
    return seq


# Gateway resources and their keys ride the same feed under one id no deployment can have (':' is not
# allowed in an id), so the controller re-reads them (all: a handful) only when one changed.
GATEWAYS_CHANGE_ID = ":gateways"


def record_gateway_change(conn: Connection) -> int:
    """A gateway resource or one of its keys changed, inside the caller's write transaction."""
    return record_change(conn, GATEWAYS_CHANGE_ID)


def current_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(select(change_counter.c.seq).where(change_counter.c.name == COUNTER)).scalar()
        return int(value or 0)


def changes_since(engine: Engine, seq: int) -> Changes:
    """What changed after `seq`: one primary-key read when nothing did, one index range read when something did."""
    with engine.connect() as conn:
        latest = conn.execute(select(change_counter.c.seq).where(change_counter.c.name == COUNTER)).scalar()
        if latest is None or int(latest) <= seq:
            return Changes(seq=seq, deployment_ids=())
        rows: Sequence[tuple[str, int]] = [
            (r.deployment_id, int(r.seq))
            for r in conn.execute(
                select(deployment_changes.c.deployment_id, deployment_changes.c.seq)
                .where(deployment_changes.c.seq > seq)
                .order_by(deployment_changes.c.seq)
            )
        ]
    return Changes(seq=max((s for _, s in rows), default=seq), deployment_ids=tuple(d for d, _ in rows))
