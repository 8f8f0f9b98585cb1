"""The Ray inventory, the pure part: what `ray.nodes()` says -> instances the scheduler places on."""

from __future__ import annotations

from typing import Any

from tide.backends.ray.inventory import RayInventory, inventory_from_nodes
from tide.scheduling import RESERVED


def node(node_id: str, gpus: int = 2, alive: bool = True, **declared: Any) -> dict[str, Any]:
    labels = declared.get("labels", {})
    resources = {"CPU": 8.0, "memory": 64 * 2**30, **({"GPU": float(gpus)} if gpus else {})}
    resources.update(declared.get("resources", {}))
    return {
        "NodeID": node_id,
        "Alive": alive,
        "NodeManagerAddress": "10.0.0.1",
        "Labels": labels,
        "Resources": resources,
    }


def labelled(node_id: str, instance_type: str, zone: str, gpus: int = 2, **more: Any) -> dict[str, Any]:
    return node(node_id, gpus, labels={"tide.io/instance-type": instance_type, "tide.io/zone": zone}, **more)


def test_labels_and_resources_declare_the_same_instances() -> None:
    by_labels = labelled("n1", "H100-2x", "us-east-04a")
    by_labels["Labels"]["tide.io/capacity-class"] = "reserved"
    by_resources = node(
        "n2",
        resources={"tide-instance:H100-2x": 1.0, "tide-zone:us-east-04b": 1.0, "tide-class:reserved": 1.0},
    )
    inventory, _ = inventory_from_nodes([by_labels, by_resources])
    assert [(i.id, i.instance_type, i.zone, i.capacity_class) for i in inventory.instances] == [
        ("n1", "H100-2x", "us-east-04a", RESERVED),
        ("n2", "H100-2x", "us-east-04b", RESERVED),
    ]
    assert [(t.id, t.gpus, t.memory_gib, t.cpus) for t in inventory.types] == [("H100-2x", 2, 64, 8)]


def test_only_alive_nodes_with_a_type_and_gpus_are_offered() -> None:
    nodes = [
        labelled("alive", "h100-2x", "a"),
        labelled("dead", "h100-2x", "b", alive=False),
        node("head", gpus=0),  # Tide's own node: no type, no GPUs
        labelled("cpu-only", "cpu-box", "a", gpus=0),
        node("untyped", gpus=4),
    ]
    inventory, infos = inventory_from_nodes(nodes)
    assert [i.id for i in inventory.instances] == ["alive"]
    # A dead node is still known, so its loss can be reported with its zone and type.
    assert infos["dead"].describe() == "node dead (b, h100-2x)"


def test_zone_falls_back_to_rays_zone_label_then_default_and_gpu_model_to_the_accelerator() -> None:
    nodes = [
        node("n1", labels={"tide.io/instance-type": "a10-1x", "ray.io/availability-zone": "eu-1b"}, gpus=1),
        node("n2", resources={"tide-instance:l4-1x": 1.0, "accelerator_type:L4": 1.0}, gpus=1),
    ]
    inventory, _ = inventory_from_nodes(nodes)
    assert inventory.zone_instance_types() == {"default": ["l4-1x"], "eu-1b": ["a10-1x"]}
    assert {t.id: t.gpu_model for t in inventory.types} == {"a10-1x": "gpu", "l4-1x": "L4"}


def test_nodes_of_one_type_that_disagree_offer_the_smallest_gpu_count() -> None:
    inventory, _ = inventory_from_nodes([labelled("n1", "mixed", "a", gpus=4), labelled("n2", "mixed", "a", gpus=2)])
    assert inventory.types[0].gpus == 2


def test_a_type_stays_known_after_its_last_node_is_gone() -> None:
    listing = [[labelled("n1", "h100-2x", "a")], []]
    inventory = RayInventory(lambda: listing.pop(0))
    assert [i.id for i in inventory.current().instances] == ["n1"]
    after = inventory.refresh()
    assert after.instances == () and [t.id for t in after.types] == ["h100-2x"]
    assert not inventory.alive("n1") and inventory.describe("n1") == "node n1 (a, h100-2x)"
