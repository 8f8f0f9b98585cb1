"""Engines for the store: SQLite (the embedded default) or Postgres (scaled out), same schema on both.

What differs per dialect lives here, so the store and the lease write plain SQLAlchemy Core:
- SQLite: WAL, a busy timeout, and `BEGIN IMMEDIATE` for write transactions, so a read-then-write
  takes the write lock up front instead of failing with "database is locked" when another writer won.
- Postgres (psycopg 3): a bounded pool that checks connections before use (a restarted server or a
  dropped idle connection costs one retry, not an error), and `SELECT ... FOR UPDATE` in the store.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine

# Marks a connection whose next transaction will write; SQLite then begins it IMMEDIATE.
_WRITE = "tide_write"


def normalize_url(url: str) -> str:
    """Plain `postgres://` / `postgresql://` URLs mean psycopg 3, the driver Tide installs (not psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    kwargs: dict[str, Any] = {"json_serializer": json.dumps}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql"):
        kwargs.update(
            pool_size=5,  # API + controller threads of one process; more waits in max_overflow
            max_overflow=10,
            pool_timeout=30,
            pool_pre_ping=True,
            pool_recycle=1800,  # below common proxy / firewall idle cut-offs
            connect_args={"connect_timeout": 10, "application_name": "tide"},
        )
    return create_engine(url, **kwargs)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: IMMEDIATE on SQLite, an ordinary one elsewhere."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """CREATE TABLE IF NOT EXISTS, safe when several processes start at once against one Postgres."""
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Without the lock two processes both see "no table" and one dies on a duplicate pg_type row.
            key = zlib.crc32(b"tide.store.schema")
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        metadata.create_all(conn)
        # create_all skips tables that exist: indexes added since a database was made are created here.
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module, so _sqlite_begin decides how each one begins.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while the controller writes; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")
