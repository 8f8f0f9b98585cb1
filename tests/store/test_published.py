"""Published state (what the leader tells `tide api` processes) on SQLite and on a real Postgres."""

from __future__ import annotations

from tide.store import Store
from tide.store.published import PublishedState


def test_written_documents_are_read_back_and_overwritten(store: Store) -> None:
    published = PublishedState(store)
    assert published.read("inventory") is None
    published.write("inventory", {"instances": [1, 2]}, 100.0)
    assert published.read("inventory") == ({"instances": [1, 2]}, 100.0)
    published.write("inventory", {"instances": []}, 105.5)
    assert published.read("inventory") == ({"instances": []}, 105.5)
    assert published.read("other") is None
