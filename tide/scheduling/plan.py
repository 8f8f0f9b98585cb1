"""Where a deployment's replicas may go, in order of preference, and how to say what is missing."""

from __future__ import annotations

from dataclasses import dataclass

from tide.scheduling.capacity import BucketKey, FreeCapacity
from tide.scheduling.decisions import DeploymentRequest
from tide.scheduling.inventory import ON_DEMAND, RESERVED, InstanceType, Inventory, type_key


@dataclass(frozen=True)
class Plan:
    """`buckets` to try, best first (class, then zone preference); `problem` when nothing can ever fit."""

    buckets: tuple[BucketKey, ...]
    zones: tuple[str, ...]
    instance_type: InstanceType | None
    problem: str | None


def plan_for(request: DeploymentRequest, inventory: Inventory) -> Plan:
    instance_type = inventory.find_type(request.instance_type)
    if instance_type is None:
        known = ", ".join(t.id for t in inventory.types) or "none"
        return Plan((), request.zones, None, f"unknown instance type {request.instance_type!r}; known: {known}")
    key = type_key(instance_type.id)
    zones_with_type = inventory.zones_offering(key)
    zones = request.zones or tuple(sorted(zones_with_type))
    if request.gpu_count > instance_type.gpus:
        return Plan(
            (),
            zones,
            instance_type,
            f"instance type {instance_type.id} has {instance_type.gpus} GPUs per instance; "
            f"a replica needs {request.gpu_count}",
        )
    if not any(zone in zones_with_type for zone in zones):
        where = f"zones {', '.join(zones)}" if zones else "any zone"
        elsewhere = ", ".join(sorted(zones_with_type)) or "no zone"
        return Plan(
            (),
            zones,
            instance_type,
            f"instance type {instance_type.id} is not offered in {where} (offered in: {elsewhere})",
        )
    buckets = tuple((key, capacity_class, zone) for capacity_class in request.class_order() for zone in zones)
    return Plan(buckets, zones, instance_type, None)


def missing_message(request: DeploymentRequest, plan: Plan, capacity: FreeCapacity, count: int) -> str:
    """E.g. "no free H100 with 2 GPUs in zones us-east-04a, us-east-04b; 3 pending"."""
    if plan.problem is not None or plan.instance_type is None:
        return f"{plan.problem}; {count} pending"
    only: dict[tuple[str, ...], str] = {(RESERVED,): "reserved ", (ON_DEMAND,): "on-demand "}
    kind = only.get(request.capacity_classes, "")
    hints = _hints(plan, capacity)
    suffix = f" ({'; '.join(hints)})" if hints else ""
    return (
        f"no free {kind}{plan.instance_type.id} with {request.gpu_count} GPUs in zones "
        f"{', '.join(plan.zones)}{suffix}; {count} pending"
    )


def _hints(plan: Plan, capacity: FreeCapacity) -> list[str]:
    """Capacity that exists but cannot be used yet: say so, the user can act on it or wait."""
    buckets = [capacity.buckets[key] for key in plan.buckets if key in capacity.buckets]
    joining = sum(bucket.joining for bucket in buckets)
    unclaimed = sum(bucket.unclaimed for bucket in buckets)
    hints = []
    if joining:
        hints.append(f"{_instances(joining)} still joining")
    if unclaimed:
        hints.append(f"{_instances(unclaimed, 'reserved ')} held by no capacity claim")
    return hints


def _instances(count: int, kind: str = "") -> str:
    return f"{count} matching {kind}instance{'s' if count != 1 else ''}"
