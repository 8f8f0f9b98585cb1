"""The change feed and keyset paging, on SQLite and Postgres: what the controller and list routes rely on."""

from __future__ import annotations

import threading
from typing import Any

from tide.store import Store
from tide.store.changes import changes_since, current_seq


def spec(name: str) -> dict[str, Any]:
    return {"name": name, "weights": {"bucket": "models", "path": "tiny"}, "runtime": {"engine": "builtin"}}


def test_every_desired_state_write_is_in_the_feed_and_status_writes_are_not(store: Store) -> None:
    store.create_deployment("a", spec("a"), now=1.0)
    store.create_deployment("b", spec("b"), now=2.0)
    seen = changes_since(store.engine, 0)
    assert seen.deployment_ids == ("a", "b")
    assert changes_since(store.engine, seen.seq).deployment_ids == ()  # nothing new: nothing returned
    store.set_status("a", {"state": "STATUS_RUNNING"})
    assert changes_since(store.engine, seen.seq).deployment_ids == ()
    store.update_spec("b", {**spec("b"), "labels": {"x": "1"}}, now=3.0)
    store.mark_deleting("a", now=4.0)
    later = changes_since(store.engine, seen.seq)
    assert later.deployment_ids == ("b", "a") and later.seq > seen.seq
    store.remove_deployment("a")
    assert changes_since(store.engine, later.seq).deployment_ids == ("a",)  # its removal, for other readers


def test_racing_writers_get_distinct_numbers_that_a_reader_never_skips(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(4)]
    try:
        seen: set[str] = set()
        seq = current_seq(stores[0].engine)
        errors: list[BaseException] = []

        def write(k: int) -> None:
            try:
                for i in range(10):
                    stores[k].create_deployment(f"w{k}-{i}", spec(f"w{k}-{i}"), now=float(i))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) or len(seen) < 40:
            changes = changes_since(stores[0].engine, seq)
            seen.update(changes.deployment_ids)
            seq = changes.seq
            if not any(t.is_alive() for t in threads) and errors:
                break
        assert not errors
        assert seen == {f"w{k}-{i}" for k in range(4) for i in range(10)}
        assert current_seq(stores[0].engine) == seq == 40
    finally:
        for s in stores:
            s.close()


def test_pages_cover_everything_once_in_creation_order(store: Store) -> None:
    for i in range(7):
        store.create_deployment(f"d{i}", spec(f"d{i}"), now=float(i // 2))  # ties on created_at break by id
    ids: list[str] = []
    page, cursor = store.list_deployments_page(3)
    ids += [r.id for r in page]
    while cursor is not None:
        store.create_deployment(f"late{len(ids)}", spec("late"), now=100.0 + len(ids))  # appended, never shifts
        page, cursor = store.list_deployments_page(3, cursor)
        ids += [r.id for r in page]
    assert ids[:7] == [f"d{i}" for i in range(7)]
    assert len(ids) == len(set(ids)) == len(store.list_deployments())


def test_lookups_by_id_and_by_name(store: Store) -> None:
    store.create_deployment("one", spec("shared"), now=1.0)
    store.create_deployment("two", spec("shared"), now=2.0)
    assert store.deployment_exists("one") and not store.deployment_exists("nope")
    assert [r.id for r in store.deployments_named("shared")] == ["one", "two"]
    assert store.deployments_named("nope") == []
    assert sorted(r.id for r in store.get_deployments(["two", "gone", "one"])) == ["one", "two"]


def test_versions_change_with_the_desired_state_and_not_with_status(store: Store) -> None:
    """What the controller's resync and housekeeping read every few seconds, without decoding a row."""
    store.create_deployment("a", spec("a"), now=1.0)
    store.create_deployment("b", spec("b"), now=2.0)
    before = store.deployment_versions()
    assert set(before) == {"a", "b"}
    store.set_status("a", {"state": "STATUS_RUNNING"})
    assert store.deployment_versions() == before  # the controller's own writes do not count
    store.update_spec("b", {**spec("b"), "labels": {"x": "1"}}, now=3.0)
    after = store.deployment_versions()
    assert after["a"] == before["a"] and after["b"] != before["b"]
    assert store.deployment_created_times() == {"a": 1.0, "b": 2.0}
