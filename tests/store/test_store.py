"""Every Store method, same behaviour on SQLite and Postgres, including racing writers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from tide.store import Conflict, DeploymentRecord, NotFound, Store
from tide.store.engine import normalize_url


def spec(name: str = "tiny-chat", **extra: Any) -> dict[str, Any]:
    return {"name": name, "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}, **extra}


def test_create_then_get_round_trips_json(store: Store) -> None:
    raw = spec(labels={"team": "ünïcode ✓"}, scaling={"min": 0, "max": 3, "target": 0.75}, tags=["a", "b"])
    created = store.create_deployment("d1", raw, now=100.5)
    assert created.id == "d1" and created.name == "tiny-chat" and created.generation == 1
    assert created.created_at == created.updated_at == 100.5
    assert created.deleting is False
    assert created.status == {"state": "STATUS_CREATING", "conditions": []}
    assert store.get_deployment("d1") == created
    assert created.spec == raw


def test_create_duplicate_id_conflicts_and_keeps_the_first(store: Store) -> None:
    store.create_deployment("d1", spec("first"), now=1.0)
    with pytest.raises(Conflict, match="d1"):
        store.create_deployment("d1", spec("second"), now=2.0)
    assert store.get_deployment("d1").name == "first"


def test_get_missing_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_deployment("nope")


def test_list_is_ordered_by_creation_time_then_id(store: Store) -> None:
    assert store.list_deployments() == []
    store.create_deployment("c", spec("c"), now=2.0)
    store.create_deployment("b", spec("b"), now=1.0)
    store.create_deployment("a", spec("a"), now=2.0)
    assert [r.id for r in store.list_deployments()] == ["b", "a", "c"]


def test_update_spec_bumps_generation_only_on_change(store: Store) -> None:
    store.create_deployment("d1", spec(), now=1.0)
    same = store.update_spec("d1", spec(), now=2.0)
    assert same.generation == 1 and same.updated_at == 2.0
    changed = store.update_spec("d1", spec("renamed", replicas=2), now=3.0)
    assert changed.generation == 2 and changed.name == "renamed" and changed.spec["replicas"] == 2
    assert changed.created_at == 1.0 and changed.updated_at == 3.0
    assert store.get_deployment("d1") == changed


def test_update_spec_missing_or_deleting(store: Store) -> None:
    with pytest.raises(NotFound):
        store.update_spec("nope", spec(), now=1.0)
    store.create_deployment("d1", spec(), now=1.0)
    store.mark_deleting("d1", now=2.0)
    with pytest.raises(Conflict, match="being deleted"):
        store.update_spec("d1", spec("x"), now=3.0)
    assert store.get_deployment("d1").spec == spec()


def test_mark_deleting(store: Store) -> None:
    store.create_deployment("d1", spec(), now=1.0)
    record = store.mark_deleting("d1", now=5.0)
    assert record.deleting is True and record.updated_at == 5.0
    assert store.get_deployment("d1").deleting is True
    with pytest.raises(NotFound):
        store.mark_deleting("nope", now=5.0)


def test_remove_deployment_is_idempotent(store: Store) -> None:
    store.create_deployment("d1", spec(), now=1.0)
    store.create_deployment("d2", spec(), now=1.0)
    store.remove_deployment("d1")
    store.remove_deployment("d1")
    with pytest.raises(NotFound):
        store.get_deployment("d1")
    assert [r.id for r in store.list_deployments()] == ["d2"]
    store.create_deployment("d1", spec(), now=9.0)  # the id is free again


def test_set_status_leaves_spec_alone(store: Store) -> None:
    store.create_deployment("d1", spec(), now=1.0)
    status = {"state": "STATUS_READY", "conditions": [{"type": "Ready", "status": True}], "replicas": 2}
    store.set_status("d1", status)
    record = store.get_deployment("d1")
    assert record.status == status and record.spec == spec() and record.generation == 1
    store.set_status("nope", status)  # the controller may race a delete: a silent no-op


def test_set_statuses_writes_each_its_own_in_one_statement(store: Store) -> None:
    for i in range(4):
        store.create_deployment(f"d{i}", spec(f"m{i}"), now=1.0 + i)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    store.set_statuses(
        {
            "d0": {"state": "STATUS_READY", "replicas": [], "at": 1764000000.123456},
            "gone": {"state": "x"},  # deleted meanwhile: skipped, as set_status skips it
            "d2": {"state": "STATUS_FAILED", "n": [2, None, True], "message": 'l\u00e4uft nicht "quoted"'},
            "d3": {"z": 1, "a": 2},
        }
    )
    assert sum("UPDATE" in s.upper() for s in statements) == 1, statements  # not one per deployment
    records = store.list_deployments()
    assert [r.status for r in records] == [
        {"state": "STATUS_READY", "replicas": [], "at": 1764000000.123456},
        {"state": "STATUS_CREATING", "conditions": []},  # not named: untouched
        {"state": "STATUS_FAILED", "n": [2, None, True], "message": 'l\u00e4uft nicht "quoted"'},
        {"z": 1, "a": 2},
    ]
    assert list(records[3].status) == ["z", "a"]  # key order kept, as set_status keeps it
    assert [r.spec for r in records] == [spec(f"m{i}") for i in range(4)]
    statements.clear()
    store.set_statuses({})  # nothing to write: no transaction
    assert statements == []
    event.remove(store.engine, "before_cursor_execute", count)


def test_state_survives_reopening(db_url: str) -> None:
    first = Store(db_url)
    first.create_deployment("d1", spec(), now=1.0)
    first.set_status("d1", {"state": "STATUS_READY"})
    first.close()
    second = Store(db_url)  # also: creating tables again on an existing schema is harmless
    try:
        assert second.get_deployment("d1").status == {"state": "STATUS_READY"}
    finally:
        second.close()


def test_plain_postgres_urls_mean_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


# -- concurrent writers --------------------------------------------------------------------------------


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..n-1) in n threads released together; results or the exceptions they raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize("separate_stores", [False, True], ids=["one-store", "two-stores"])
def test_two_creators_of_one_id_exactly_one_wins(db_url: str, separate_stores: bool) -> None:
    # Two stores = two engines and pools, as two API processes would have.
    stores = [Store(db_url), Store(db_url)] if separate_stores else [Store(db_url)] * 2
    try:
        for round_ in range(15):
            deployment_id = f"d{round_}"

            def create(i: int, deployment_id: str = deployment_id) -> DeploymentRecord:
                return stores[i].create_deployment(deployment_id, spec(f"writer-{i}"), now=1.0)

            results = _race(2, create)
            conflicts = [r for r in results if isinstance(r, Conflict)]
            created = [r for r in results if not isinstance(r, Exception)]
            assert len(conflicts) == 1 and len(created) == 1, results
            assert stores[0].get_deployment(deployment_id).name == created[0].name
    finally:
        for s in {id(s): s for s in stores}.values():
            s.close()


def test_racing_spec_updates_are_all_counted(store: Store) -> None:
    store.create_deployment("d1", spec(), now=1.0)
    writers, each = 6, 5

    def update(i: int) -> None:
        for k in range(each):
            store.update_spec("d1", spec(f"w{i}-{k}"), now=2.0)

    results = _race(writers, update)
    assert all(r is None for r in results), results
    # A lost update (two read-modify-writes from the same generation) would leave fewer bumps.
    assert store.get_deployment("d1").generation == 1 + writers * each


def test_status_writes_and_spec_updates_do_not_clobber_each_other(store: Store) -> None:
    store.create_deployment("d1", spec(), now=1.0)

    def write(i: int) -> None:
        for k in range(20):
            if i == 0:
                store.update_spec("d1", spec(f"v{k}"), now=2.0)
            else:
                store.set_status("d1", {"n": k})

    results = _race(2, write)
    assert not any(isinstance(r, Exception) for r in results), results
    record = store.get_deployment("d1")
    assert record.spec == spec("v19") and record.status == {"n": 19} and record.generation == 21
