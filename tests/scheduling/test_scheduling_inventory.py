"""Inventory model, local and declared inventories."""

from __future__ import annotations

import pytest

from tests.scheduling.fleet import ZONE_A, ZONE_B, fleet, on_demand, reserved
from tide.errors import FieldError
from tide.scheduling import (
    CPU_LOCAL_TYPE,
    DeploymentRequest,
    Instance,
    InstanceType,
    Inventory,
    Placement,
    declared_inventory,
    local_inventory,
    parse_capacity_class,
    schedule,
)


def test_instance_types_are_case_insensitive() -> None:
    inventory = fleet(on_demand("a", type_id="h100"))
    found = inventory.find_type("h100")
    assert found is not None and found.id == "H100"
    assert inventory.find_type("l40-4X") is not None
    assert inventory.find_type("A100") is None


def test_zone_instance_types_lists_each_zone_sorted() -> None:
    inventory = fleet(on_demand("a", ZONE_B), on_demand("b", ZONE_A, "l40-4x"), reserved("c", ZONE_A, joining=True))
    assert inventory.zone_instance_types() == {ZONE_A: ["H100", "L40-4x"], ZONE_B: ["H100"]}


def test_free_gpus_subtracts_placements() -> None:
    inventory = fleet(on_demand("a"), on_demand("b"))
    placements = [Placement("d", "r0", "a", 2), Placement("d", "r1", "a", 4), Placement("x", "r0", "gone", 8)]
    assert inventory.free_gpus(placements) == {"a": 2, "b": 8}


def test_inventory_rejects_duplicates_and_unknown_types() -> None:
    with pytest.raises(FieldError) as duplicate:
        fleet(on_demand("a"), on_demand("a"))
    assert duplicate.value.field == "instances[1].id"
    with pytest.raises(FieldError) as unknown:
        Inventory((InstanceType("H100", "H100", 8, 0, 0),), (Instance("a", "B200", ZONE_A, "on_demand"),))
    assert unknown.value.field == "instances[0].instanceType"


def test_capacity_class_accepts_api_enums() -> None:
    assert parse_capacity_class("CAPACITY_CLASS_RESERVED") == "reserved"
    assert parse_capacity_class("CAPACITY_CLASS_ON_DEMAND") == "on_demand"
    with pytest.raises(ValueError):
        parse_capacity_class("CAPACITY_CLASS_SPOT")


def test_local_cpu_inventory_fits_several_replicas() -> None:
    inventory = local_inventory(None, 0)
    assert [t.id for t in inventory.types] == [CPU_LOCAL_TYPE]
    result = schedule(inventory, [], [DeploymentRequest("tiny", 3, "CPU-local", 1)], now=0.0)
    assert len(result.started) == 3 and not result.pending
    assert {p.instance_id for p in result.started} == {"local-cpu"}


def test_local_gpu_inventory_adds_the_gpus() -> None:
    inventory = local_inventory("H100", 2)
    gpu_type = inventory.find_type("gpu-local")
    assert gpu_type is not None and gpu_type.gpus == 2 and gpu_type.gpu_model == "H100"
    assert inventory.find_type(CPU_LOCAL_TYPE) is not None


DECLARED = {
    "instanceTypes": [{"id": "H100-8x", "gpuModel": "H100", "gpus": 8, "memoryGib": 1024, "cpus": 128}],
    "instances": [
        {"type": "h100-8x", "zone": ZONE_A, "count": 2, "class": "reserved", "claim": "team-a", "joining": 1},
        {"type": "H100-8X", "zone": ZONE_B, "count": 1},
        {"type": "h100-8x", "zone": ZONE_A, "count": 1, "class": "CAPACITY_CLASS_ON_DEMAND"},
    ],
}


def test_declared_inventory_builds_virtual_instances() -> None:
    inventory = declared_inventory(DECLARED)
    assert [(i.id, i.capacity_class, i.claim_id, i.joining) for i in inventory.instances] == [
        ("h100-8x-us-east-04a-0", "reserved", "team-a", False),
        ("h100-8x-us-east-04a-1", "reserved", "team-a", True),
        ("h100-8x-us-east-04b-0", "on_demand", None, False),
        ("h100-8x-us-east-04a-2", "on_demand", None, False),
    ]


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"instances": [{"type": "b200", "zone": ZONE_A}]}, "instances[0].type"),
        ({"instances": [{"type": "h100-8x", "zone": ZONE_A, "count": 0}]}, "instances[0].count"),
        ({"instances": [{"type": "h100-8x", "zone": ZONE_A, "class": "spot"}]}, "instances[0].class"),
        ({"instances": [{"type": "h100-8x", "zone": ZONE_A, "claim": "x"}]}, "instances[0].claim"),
        ({"instances": [{"type": "h100-8x", "zone": ZONE_A, "count": 1, "joining": 2}]}, "instances[0].joining"),
        ({"instances": [{"type": "h100-8x", "zones": ZONE_A}]}, "instances[0].zones"),
        ({"instanceTypes": [{"id": "x", "gpuModel": "H100", "gpus": True}]}, "instanceTypes[1].gpus"),
        ({"instanceTypes": [{"id": "H100-8X", "gpuModel": "H100", "gpus": 8}]}, "instanceTypes[1].id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_declared_inventory_errors_name_the_key(broken: dict[str, object], field: str) -> None:
    declared = {**DECLARED, "instances": [], **broken}
    if field.startswith("instanceTypes"):
        declared["instanceTypes"] = DECLARED["instanceTypes"] + broken["instanceTypes"]  # type: ignore[operator]
    with pytest.raises(FieldError) as error:
        declared_inventory(declared)
    assert error.value.field == field
