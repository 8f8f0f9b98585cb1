"""`tide api` validates against the leader's published inventory, and falls back to its own until then."""

from __future__ import annotations

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


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def view(tmp_path: Path, clock: Clock) -> tuple[PublishedView, PublishedState]:
    published = PublishedState(Store(f"sqlite:///{tmp_path / 'tide.db'}"))
    return PublishedView(published, local_inventory(None, 0), catalog_from_inventory, clock=clock), published


def publish(published: PublishedState, inventory: Inventory, vllm: list[str]) -> None:
    published.write(INVENTORY_KEY, {"inventory": inventory_to_json(inventory), "vllmVersions": vllm}, 1.0)


def test_its_own_inventory_until_the_leader_publishes_then_the_leaders(tmp_path: Path) -> None:
    clock = Clock()
    api, published = view(tmp_path, clock)
    assert [t.id for t in api.catalog().instance_types] == ["cpu-local"]
    publish(published, CLUSTER, ["0.32.0"])
    clock.now += 2.0
    assert api.inventory() == CLUSTER
    catalog = api.catalog()
    assert [(t.id, t.zones) for t in catalog.instance_types] == [("h100-2x", ("us-east-04a",))]
    vllm = catalog.engine("vllm")
    assert vllm is not None and vllm.versions == ("0.32.0",)  # the leader's nodes', not this machine's


def test_changes_are_seen_after_the_refresh_interval_and_a_bad_document_keeps_the_last(tmp_path: Path) -> None:
    clock = Clock()
    api, published = view(tmp_path, clock)
    publish(published, CLUSTER, [])
    assert api.inventory() == CLUSTER
    smaller = Inventory(CLUSTER.types, CLUSTER.instances[:1])
    publish(published, smaller, [])
    clock.now += 1.0
    assert api.inventory() == CLUSTER  # cached for refresh_s (2 s): no database read per request
    clock.now += 1.0
    assert api.inventory() == smaller
    published.write(INVENTORY_KEY, {"inventory": {"instanceTypes": []}}, 2.0)  # no instances: malformed
    clock.now += 2.0
    assert api.inventory() == smaller
