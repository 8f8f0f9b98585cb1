"""`tide api` validates against the leader's published inventory, and falls back to its own until then."""

from __future__ import annotations

import time
from pathlib import Path

from tide.api.published_view import PublishedView
from tide.scheduling import Inventory, declared_inventory, local_inventory
from tide.scheduling.inventory_json import inventory_to_json
from tide.server import catalog_from_inventory
from tide.store import Store
from tide.store.published import INVENTORY_KEY, PublishedState

CLUSTER = declared_inventory(
    {
        "instanceTypes": [{"id": "h100-2x", "gpuModel": "H100", "gpus": 2}],
        "instances": [{"type": "h100-2x", "zone": "us-east-04a", "count": 2}],
    }
)


def view(tmp_path: Path) -> tuple[PublishedView, PublishedState]:
    published = PublishedState(Store(f"sqlite:///{tmp_path / 'tide.db'}"))
    return PublishedView(published, local_inventory(None, 0), catalog_from_inventory), published


def publish(published: PublishedState, inventory: Inventory, vllm: list[str]) -> None:
    published.write(INVENTORY_KEY, {"inventory": inventory_to_json(inventory), "vllmVersions": vllm}, 1.0)


def test_its_own_inventory_until_the_leader_publishes_then_the_leaders(tmp_path: Path) -> None:
    api, published = view(tmp_path)
    api.refresh()
    assert [t.id for t in api.catalog().instance_types] == ["cpu-local"]
    publish(published, CLUSTER, ["0.32.0"])
    assert api.inventory() != CLUSTER  # requests never read the database: only the refresh does
    api.refresh()
    assert api.inventory() == CLUSTER
    catalog = api.catalog()
    assert [(t.id, t.zones) for t in catalog.instance_types] == [("h100-2x", ("us-east-04a",))]
    vllm = catalog.engine("vllm")
    assert vllm is not None and vllm.versions == ("0.32.0",)  # the leader's nodes', not this machine's


def test_a_bad_document_keeps_the_last_good_one(tmp_path: Path) -> None:
    api, published = view(tmp_path)
    publish(published, CLUSTER, [])
    api.refresh()
    assert api.inventory() == CLUSTER
    published.write(INVENTORY_KEY, {"inventory": {"instanceTypes": []}}, 2.0)  # no instances: malformed
    api.refresh()
    assert api.inventory() == CLUSTER
    smaller = Inventory(CLUSTER.types, CLUSTER.instances[:1])
    publish(published, smaller, [])
    api.refresh()
    assert api.inventory() == smaller


def test_the_background_refresh_follows_changes(tmp_path: Path) -> None:
    published = PublishedState(Store(f"sqlite:///{tmp_path / 'tide.db'}"))
    api = PublishedView(published, local_inventory(None, 0), catalog_from_inventory, refresh_s=0.05)
    stop = api.start()
    try:
        publish(published, CLUSTER, [])
        deadline = time.monotonic() + 5
        while api.inventory() != CLUSTER and time.monotonic() < deadline:
            time.sleep(0.02)
        assert api.inventory() == CLUSTER
    finally:
        stop.set()
