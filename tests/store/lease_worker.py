"""A stand-in controller for the takeover test: holds the lease and, while leader, writes heartbeats.

Usage: python lease_worker.py DATABASE_URL HOLDER TTL_S

Each heartbeat row is (holder, t, lease_expires_at, term), written only when `t` is before the expiry the
worker itself computed: exactly the check a real controller makes before acting.
"""

from __future__ import annotations

import asyncio
import sys
import time

from sqlalchemy import Column, Float, Integer, MetaData, String, Table
from sqlalchemy.engine import Engine

from tide.store.engine import create_tables, make_engine
from tide.store.lease import LeaderLease

heartbeat_metadata = MetaData()
heartbeats = Table(
    "heartbeats",
    heartbeat_metadata,
    Column("holder", String(255), nullable=False),
    Column("t", Float, nullable=False),
    Column("lease_expires_at", Float, nullable=False),
    Column("term", Integer, nullable=False),
)


def _beat(engine: Engine, lease: LeaderLease) -> None:
    now = time.time()
    expires_at, term = lease.expires_at, lease.term
    if expires_at is not None and term is not None and now < expires_at:
        with engine.begin() as conn:
            conn.execute(heartbeats.insert().values(holder=lease.holder, t=now, lease_expires_at=expires_at, term=term))


async def main(url: str, holder: str, ttl_s: float) -> None:
    engine = make_engine(url)
    create_tables(engine, heartbeat_metadata)
    lease = LeaderLease(engine, holder=holder, ttl_s=ttl_s)
    print("campaigning", flush=True)
    hold = asyncio.create_task(lease.hold(lambda: None, lambda: None))
    while not hold.done():
        await asyncio.to_thread(_beat, engine, lease)
        await asyncio.sleep(0.05)
    hold.result()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
