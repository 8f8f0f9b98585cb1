"""Leader lease: at most one controller acts at a time; another takes over when the leader dies.

One row per lease (name, holder, expires_at, term) in the store's database. Acquiring and renewing are
single conditional statements, so the database arbitrates races on SQLite and Postgres alike:

- take:   UPDATE ... WHERE name = :name AND (holder = :me OR expires_at <= :now), else INSERT the row
          (the primary key makes two first-time inserters race safely: one wins).
- renew:  UPDATE ... WHERE name = :name AND holder = :me AND expires_at > :now.

`term` grows by one every time the lease changes hands (or is re-taken after lapsing): a fencing token a
leader can attach to its writes. A leader trusts its own lease only until `expires_at` computed from the
clock reading taken *before* the statement, so a slow round trip shortens its term, never lengthens it.
Clocks of the contending hosts must agree to well within the TTL (NTP); the TTL is the margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, case, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tide.store.database import Store
from tide.store.engine import create_tables
from tide.timing import LEASE_TTL_S

log = logging.getLogger(__name__)

lease_metadata = MetaData()

leases = Table(
    "leases",
    lease_metadata,
    Column("name", String(63), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("term", Integer, nullable=False),
)

Callback = Callable[[], Awaitable[None] | None]


# -- pure timing logic (the SQL conditions below say the same thing) -------------------------------------


def is_expired(expires_at: float, now: float) -> bool:
    return now >= expires_at


def may_take(holder: str | None, expires_at: float | None, me: str, now: float) -> bool:
    """May `me` take the lease at `now`, given the row (None, None when there is no row yet)?"""
    if holder is None or expires_at is None:
        return True
    return holder == me or is_expired(expires_at, now)


def may_renew(holder: str | None, expires_at: float | None, me: str, now: float) -> bool:
    """Renewal extends an unexpired lease of ours only; a lapsed one must be taken again (new term)."""
    return holder == me and expires_at is not None and not is_expired(expires_at, now)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(
        self,
        store_or_engine: Store | Engine,
        name: str = "controller",
        holder: str | None = None,
        ttl_s: float = LEASE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.engine: Engine = store_or_engine.engine if isinstance(store_or_engine, Store) else store_or_engine
        self.name = name
        self.holder = holder or default_holder()
        self.ttl_s = ttl_s
        self.clock = clock
        self.term: int | None = None
        self._expires_at: float | None = None  # by our clock; None when we do not hold it
        create_tables(self.engine, lease_metadata)

    @property
    def is_leader(self) -> bool:
        return self._expires_at is not None and not is_expired(self._expires_at, self.clock())

    @property
    def expires_at(self) -> float | None:
        return self._expires_at

    def try_acquire(self, now: float) -> bool:
        """Take the lease if it is free, lapsed, or already ours. True when we hold it afterwards."""
        expires = now + self.ttl_s
        c = leases.c
        ours_and_live = (c.holder == self.holder) & (c.expires_at > now)
        take = (
            update(leases)
            .where(c.name == self.name, (c.holder == self.holder) | (c.expires_at <= now))
            .values(holder=self.holder, expires_at=expires, term=case((ours_and_live, c.term), else_=c.term + 1))
            .returning(c.term)
        )
        with self.engine.begin() as conn:
            term = conn.execute(take).scalar_one_or_none()
        if term is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(leases.insert().values(name=self.name, holder=self.holder, expires_at=expires, term=1))
                term = 1
            except IntegrityError:
                # The row exists and is someone else's live lease (or another first-comer just won).
                self._expires_at = None
                return False
        self.term, self._expires_at = term, expires
        return True

    def renew(self, now: float) -> bool:
        """Extend our unexpired lease. False means we are not the leader (any more)."""
        c = leases.c
        stmt = (
            update(leases)
            .where(c.name == self.name, c.holder == self.holder, c.expires_at > now)
            .values(expires_at=now + self.ttl_s)
        )
        with self.engine.begin() as conn:
            renewed = conn.execute(stmt).rowcount == 1
        self._expires_at = now + self.ttl_s if renewed else None
        return renewed

    def release(self) -> None:
        """Give the lease up now (graceful shutdown), so a follower need not wait for the TTL."""
        self._expires_at = None
        c = leases.c
        with self.engine.begin() as conn:
            conn.execute(update(leases).where(c.name == self.name, c.holder == self.holder).values(expires_at=0.0))

    async def hold(self, on_elected: Callback, on_lost: Callback) -> None:
        """Campaign and hold until cancelled: try or renew every ttl/3, call back on every change.

        A database error is not a loss by itself; the lease is lost when it could not be renewed before
        it expired by our clock. Callbacks run inline (sync or async) and should only start or stop
        work: a slow callback delays the next renewal. On cancellation a leader calls on_lost, then
        releases the lease.
        """
        interval = self.ttl_s / 3
        leading = False
        try:
            while True:
                now = self.clock()
                try:
                    if leading:
                        await asyncio.to_thread(self.renew, now)
                    else:
                        await asyncio.to_thread(self.try_acquire, now)
                except SQLAlchemyError as exc:
                    log.warning("lease %r: database error, will retry: %s", self.name, exc)
                if self.is_leader and not leading:
                    leading = True
                    log.info("lease %r: %s elected (term %s)", self.name, self.holder, self.term)
                    await _call(on_elected)
                elif leading and not self.is_leader:
                    leading = False
                    log.warning("lease %r: %s lost leadership", self.name, self.holder)
                    await _call(on_lost)
                delay = interval
                if leading and self._expires_at is not None:
                    # Wake in time to notice our own expiry when renewals keep failing.
                    delay = max(0.0, min(interval, self._expires_at - self.clock()))
                await asyncio.sleep(delay)
        finally:
            if leading:
                await _call(on_lost)
                # Releasing is a courtesy: if the database is gone, the lease simply expires.
                with contextlib.suppress(SQLAlchemyError):
                    await asyncio.to_thread(self.release)


async def _call(callback: Callback) -> None:
    result = callback()
    if inspect.isawaitable(result):
        await result
