"""A store written by the version before the hosted wire format opens in this one.

`fixtures/v0-store.db` was written by that version's code (fixtures/make_v0_store.py, commit 6a732bf):
its specs have `name` + `weights: {bucket, path}` and no `gatewayIds`.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tide.spec import InstanceTypeInfo, default_catalog, deployment_to_dict, parse_deployment
from tide.store import Store
from tide.store.claims import ClaimStore
from tide.store.gateways import KeyLimits, KeyStore

OLD_DB = Path(__file__).parent / "fixtures" / "v0-store.db"
CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0),)
)


def open_copy(tmp_path: Path) -> Store:
    db = tmp_path / "tide.db"
    shutil.copy(OLD_DB, db)
    return Store(f"sqlite:///{db}")


def test_old_store_opens_with_model_and_default_gateway(tmp_path: Path) -> None:
    store = open_copy(tmp_path)
    chat = store.get_deployment("tiny-chat")
    assert chat.spec["model"] == {"name": "tiny-chat", "bucket": "models", "path": "tiny"}
    assert chat.spec["gatewayIds"] == ["default"]
    assert chat.spec["weights"] == {"allowPatterns": ["*.json", "*.safetensors"]}  # filters stay
    assert chat.spec["traffic"] == {"weight": 30}
    assert chat.generation == 1  # the same deployment: nothing to roll
    assert chat.status["state"] == "STATUS_READY"
    canary = store.get_deployment("tiny-canary")
    assert canary.spec["model"]["name"] == "tiny-canary" and canary.spec["disabled"] is True
    # What the new code would have written for the fields the migration moves, field for field (fields
    # added since, such as traffic.routing, are filled in with their defaults when read).
    spec = parse_deployment(chat.spec, CATALOG)
    written = deployment_to_dict(spec)
    for moved in ("name", "model", "gatewayIds", "weights", "runtime", "disabled"):
        assert written.get(moved) == chat.spec.get(moved), moved
    assert spec.routing_name == "tiny-chat" and spec.gateway_ids == ("default",)
    assert [c.id for c in ClaimStore(store).list_claims()] == ["reserve-a"]
    store.close()


def test_migration_is_written_once_and_reopening_changes_nothing(tmp_path: Path) -> None:
    first = open_copy(tmp_path)
    migrated = first.get_deployment("tiny-chat")
    first.close()
    again = Store(first.url)
    assert again.get_deployment("tiny-chat") == migrated
    again.close()


def test_a_keys_table_from_before_token_limits_gets_the_column(tmp_path: Path) -> None:
    """gateway_keys as the first release with per-gateway keys wrote it (no tokens_per_minute): its keys
    keep working, and new keys can carry a token limit."""
    db = tmp_path / "tide.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE gateway_keys (id VARCHAR(63) PRIMARY KEY, gateway_id VARCHAR(63) NOT NULL, "
            "name VARCHAR(63) NOT NULL, key_hash VARCHAR(64) NOT NULL UNIQUE, prefix VARCHAR(16) NOT NULL, "
            "created_at FLOAT NOT NULL, requests_per_minute INTEGER)"
        )
        conn.execute("INSERT INTO gateway_keys VALUES ('key-old', 'default', 'ci', 'ab12', 'tide_abcd', 1.0, 30)")
    store = Store(f"sqlite:///{db}")
    keys = KeyStore(store.engine)
    assert keys.key_grants() == {"default": {"ab12": KeyLimits("key-old", 30, None)}}
    created, _ = keys.create_key("default", "new", 2.0, None, 5000)
    assert created.tokens_per_minute == 5000
    store.close()
    Store(f"sqlite:///{db}").close()  # opening again finds the column there
