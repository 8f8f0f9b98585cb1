"""Facts the acting controller publishes for other processes, on the store's database.

One table, `published_state`: a JSON document per key with the time it was written. The leader writes
(e.g. `inventory`: the instances it schedules on, and the vLLM versions it offers) when they change;
`tide api` processes, which have no backend of their own, read them to validate and to answer
`/deployments/parameters` as the leader would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Float, String, Table, select
from sqlalchemy.types import JSON

from tide.store.database import Store, metadata
from tide.store.engine import write_transaction

published_state = Table(
    "published_state",
    metadata,
    Column("key", String(63), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

INVENTORY_KEY = "inventory"


class PublishedState:
    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def write(self, key: str, value: Any, now: float) -> None:
        with write_transaction(self.engine) as conn:
            updated = conn.execute(
                published_state.update().where(published_state.c.key == key).values(value=value, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(published_state.insert().values(key=key, value=value, updated_at=now))

    def read(self, key: str) -> tuple[Any, float] | None:
        """(document, when it was written), or None when nothing was published under `key`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(published_state.c.value, published_state.c.updated_at).where(published_state.c.key == key)
            ).first()
        return None if row is None else (row.value, row.updated_at)
