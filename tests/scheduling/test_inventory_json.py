"""The inventory survives the trip through JSON that the leader publishes for `tide api` processes."""

from __future__ import annotations

import json

import pytest

from tide.scheduling import declared_inventory, local_inventory
from tide.scheduling.inventory_json import inventory_from_json, inventory_to_json


def test_a_declared_fleet_with_claims_and_joining_instances_round_trips() -> None:
    inventory = declared_inventory(
        {
            "instanceTypes": [
                {"id": "H100-8x", "gpuModel": "H100", "gpus": 8, "memoryGib": 1024, "cpus": 128},
                {"id": "L40-4x", "gpuModel": "L40", "gpus": 4},
            ],
            "instances": [
                {"type": "h100-8x", "zone": "us-east-04a", "count": 3, "class": "reserved", "claim": "a", "joining": 1},
                {"type": "L40-4x", "zone": "us-east-04b", "count": 2},
            ],
        }
    )
    document = json.loads(json.dumps(inventory_to_json(inventory)))  # as the database hands it back
    assert inventory_from_json(document) == inventory
    assert [i.joining for i in inventory_from_json(document).instances] == [False, False, True, False, False]


def test_this_machine_round_trips() -> None:
    inventory = local_inventory("A10", 2, cpu_slots=4)
    assert inventory_from_json(inventory_to_json(inventory)) == inventory


def test_a_malformed_document_is_an_error_not_a_wrong_inventory() -> None:
    document = inventory_to_json(local_inventory(None, 0))
    del document["instances"][0]["zone"]
    with pytest.raises(KeyError):
        inventory_from_json(document)
    document = inventory_to_json(local_inventory(None, 0))
    document["instances"][0]["class"] = "spot"
    with pytest.raises(ValueError):
        inventory_from_json(document)
