"""The inventory as JSON, ids and all: how the acting controller tells `tide api` processes what exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tide.scheduling.inventory import Instance, InstanceType, Inventory, parse_capacity_class


def inventory_to_json(inventory: Inventory) -> dict[str, Any]:
    return {
        "instanceTypes": [
            {"id": t.id, "gpuModel": t.gpu_model, "gpus": t.gpus, "memoryGib": t.memory_gib, "cpus": t.cpus}
            for t in inventory.types
        ],
        "instances": [
            {
                "id": i.id,
                "type": i.instance_type,
                "zone": i.zone,
                "class": i.capacity_class,
                "claim": i.claim_id,
                "joining": i.joining,
            }
            for i in inventory.instances
        ],
    }


def inventory_from_json(data: Mapping[str, Any]) -> Inventory:
    """The inverse of `inventory_to_json`; ValueError/KeyError/TypeError on a malformed document."""
    types = tuple(
        InstanceType(str(t["id"]), str(t["gpuModel"]), int(t["gpus"]), int(t["memoryGib"]), int(t["cpus"]))
        for t in data["instanceTypes"]
    )
    instances = tuple(
        Instance(
            id=str(i["id"]),
            instance_type=str(i["type"]),
            zone=str(i["zone"]),
            capacity_class=parse_capacity_class(str(i["class"])),
            claim_id=None if i.get("claim") is None else str(i["claim"]),
            joining=bool(i.get("joining", False)),
        )
        for i in data["instances"]
    )
    return Inventory(types, instances)
