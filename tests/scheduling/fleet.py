"""Small fleets for the scheduling tests (imported by them; not a test module)."""

from __future__ import annotations

from tide.scheduling import Instance, InstanceType, Inventory

H100 = InstanceType("H100", "H100", 8, 1024, 128)
L40 = InstanceType("L40-4x", "L40", 4, 256, 64)
ZONE_A = "us-east-04a"
ZONE_B = "us-east-04b"


def fleet(*instances: Instance, types: tuple[InstanceType, ...] = (H100, L40)) -> Inventory:
    return Inventory(types, instances)


def on_demand(instance_id: str, zone: str = ZONE_A, type_id: str = "H100", joining: bool = False) -> Instance:
    return Instance(instance_id, type_id, zone, "on_demand", None, joining)


def reserved(
    instance_id: str, zone: str = ZONE_A, type_id: str = "H100", claim: str | None = "claim-1", joining: bool = False
) -> Instance:
    return Instance(instance_id, type_id, zone, "reserved", claim, joining)
