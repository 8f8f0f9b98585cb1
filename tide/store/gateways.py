"""Gateways on the store's database: one row per gateway resource, its validated spec as JSON, and the
API keys issued for `apiKeyAuth` gateways (only their SHA-256 is stored; the key is shown once).

The default gateway (id `default`) always exists: the store writes it when it opens a database without
one (a new installation, or one from before gateways were resources, whose deployments all name it).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Column, Float, Integer, String, Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.types import JSON

from tide.spec.deployment import DEFAULT_GATEWAY_ID
from tide.spec.gateway import default_gateway, gateway_to_dict
from tide.store.changes import record_gateway_change
from tide.store.database import Conflict, NotFound, metadata
from tide.store.engine import write_transaction

gateways = Table(
    "gateways",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


@dataclass
class GatewayRecord:
    id: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float


def _record(row: Any) -> GatewayRecord:
    return GatewayRecord(id=row.id, spec=dict(row.spec), created_at=row.created_at, updated_at=row.updated_at)


def _read(conn: Connection, gateway_id: str) -> GatewayRecord:
    row = conn.execute(select(gateways).where(gateways.c.id == gateway_id)).first()
    if row is None:
        raise NotFound(gateway_id)
    return _record(row)


def ensure_default_gateway(engine: Engine, now: float | None = None) -> None:
    with engine.connect() as conn:
        if conn.execute(select(gateways.c.id).where(gateways.c.id == DEFAULT_GATEWAY_ID)).first() is not None:
            return
    moment = time.time() if now is None else now
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                gateways.insert().values(
                    id=DEFAULT_GATEWAY_ID, spec=gateway_to_dict(default_gateway()), created_at=moment, updated_at=moment
                )
            )
    except IntegrityError:
        pass  # another process opening the same database wrote it first


class GatewayStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_gateways(self) -> list[GatewayRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(gateways).order_by(gateways.c.created_at, gateways.c.id))
            return [_record(r) for r in rows]

    def get_gateway(self, gateway_id: str) -> GatewayRecord:
        with self.engine.connect() as conn:
            return _read(conn, gateway_id)

    def create_gateway(self, gateway_id: str, spec: dict[str, Any], now: float) -> GatewayRecord:
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(gateways.insert().values(id=gateway_id, spec=spec, created_at=now, updated_at=now))
                record_gateway_change(conn)
                return _read(conn, gateway_id)
        except IntegrityError as exc:
            raise Conflict(f"a gateway with id {gateway_id!r} already exists") from exc

    def update_gateway(self, gateway_id: str, spec: dict[str, Any], now: float) -> GatewayRecord:
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                gateways.update().where(gateways.c.id == gateway_id).values(spec=spec, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(gateway_id)
            record_gateway_change(conn)
            return _read(conn, gateway_id)

    def delete_gateway(self, gateway_id: str) -> GatewayRecord:
        with write_transaction(self.engine) as conn:
            record = _read(conn, gateway_id)
            conn.execute(gateways.delete().where(gateways.c.id == gateway_id))
            conn.execute(gateway_keys.delete().where(gateway_keys.c.gateway_id == gateway_id))
            record_gateway_change(conn)
            return record


# -- API keys of apiKeyAuth gateways -------------------------------------------------------------------

gateway_keys = Table(
    "gateway_keys",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("gateway_id", String(63), nullable=False, index=True),
    Column("name", String(63), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key; the key is never stored
    Column("prefix", String(16), nullable=False),  # the key's first characters, to recognise it in a list
    Column("created_at", Float, nullable=False),
    Column("requests_per_minute", Integer, nullable=True),  # None: no limit
    Column("tokens_per_minute", Integer, nullable=True),  # prompt + completion tokens; None: no limit
)

# Columns added to gateway_keys after it first shipped: a database from before gets them (NULL: no limit).
_ADDED_KEY_COLUMNS = {"tokens_per_minute": "INTEGER"}


def add_key_columns(engine: Engine) -> None:
    """`create_all` makes missing tables, not missing columns: add the nullable ones a database lacks."""
    with engine.connect() as conn:
        present = {column["name"] for column in inspect(conn).get_columns(gateway_keys.name)}
    missing = {name: kind for name, kind in _ADDED_KEY_COLUMNS.items() if name not in present}
    if not missing:
        return
    try:
        with write_transaction(engine) as conn:
            for name, kind in missing.items():
                conn.execute(text(f"ALTER TABLE {gateway_keys.name} ADD COLUMN {name} {kind}"))
    except (OperationalError, ProgrammingError):
        pass  # another process opening the same database added it first


KEY_PREFIX = "tide_"


@dataclass
class KeyRecord:
    id: str
    gateway_id: str
    name: str
    prefix: str
    created_at: float
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


class KeyLimits(NamedTuple):
    key_id: str
    requests_per_minute: int | None
    tokens_per_minute: int | None


def hash_key(key: str) -> str:
    """Keys are 32 random bytes: a plain SHA-256 is enough (no password to stretch)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _key_record(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        gateway_id=row.gateway_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
    )


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_key(
        self,
        gateway_id: str,
        name: str,
        now: float,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key for the gateway: its record and the key itself, which is not kept (shown once)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = f"key-{secrets.token_hex(6)}"
        with write_transaction(self.engine) as conn:
            conn.execute(
                gateway_keys.insert().values(
                    id=key_id,
                    gateway_id=gateway_id,
                    name=name,
                    key_hash=hash_key(key),
                    prefix=key[: len(KEY_PREFIX) + 4],
                    created_at=now,
                    requests_per_minute=requests_per_minute,
                    tokens_per_minute=tokens_per_minute,
                )
            )
            record_gateway_change(conn)
            row = conn.execute(select(gateway_keys).where(gateway_keys.c.id == key_id)).one()
        return _key_record(row), key

    def list_keys(self, gateway_id: str) -> list[KeyRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(gateway_keys)
                .where(gateway_keys.c.gateway_id == gateway_id)
                .order_by(gateway_keys.c.created_at, gateway_keys.c.id)
            )
            return [_key_record(r) for r in rows]

    def revoke_key(self, gateway_id: str, key_id: str) -> KeyRecord:
        with write_transaction(self.engine) as conn:
            where = (gateway_keys.c.id == key_id) & (gateway_keys.c.gateway_id == gateway_id)
            row = conn.execute(select(gateway_keys).where(where)).first()
            if row is None:
                raise NotFound(key_id)
            conn.execute(gateway_keys.delete().where(where))
            record_gateway_change(conn)
            return _key_record(row)

    def key_grants(self) -> dict[str, dict[str, KeyLimits]]:
        """gateway id -> {hash of each of its keys: its id and limits} (what gateways check)."""
        out: dict[str, dict[str, KeyLimits]] = {}
        c = gateway_keys.c
        columns = (c.gateway_id, c.id, c.key_hash, c.requests_per_minute, c.tokens_per_minute)
        with self.engine.connect() as conn:
            for row in conn.execute(select(*columns)):
                grant = KeyLimits(row.id, row.requests_per_minute, row.tokens_per_minute)
                out.setdefault(row.gateway_id, {})[row.key_hash] = grant
        return out
