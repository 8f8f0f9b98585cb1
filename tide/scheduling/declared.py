"""Inventories that are not discovered: "this machine", and declared virtual fleets for tests and demos."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tide.errors import FieldError
from tide.scheduling.errors import reject_unknown_keys, require_mapping
from tide.scheduling.inventory import (
    ON_DEMAND,
    CapacityClass,
    Instance,
    InstanceType,
    Inventory,
    parse_capacity_class,
    type_key,
)

CPU_LOCAL_TYPE = "cpu-local"
GPU_LOCAL_TYPE = "gpu-local"
LOCAL_ZONE = "local"
# Virtual slots on the CPU type: enough for several 1-"GPU" CPU replicas side by side.
DEFAULT_CPU_SLOTS = 8

_TYPE_KEYS = {"id", "gpuModel", "gpus", "memoryGib", "cpus"}
_GROUP_KEYS = {"type", "zone", "count", "class", "claim", "joining"}


def local_inventory(
    gpu_model: str | None,
    gpu_count: int,
    *,
    cpu_slots: int = DEFAULT_CPU_SLOTS,
    memory_gib: int = 0,
    cpus: int = 0,
    zone: str = LOCAL_ZONE,
) -> Inventory:
    """This machine: always a `cpu-local` instance with `cpu_slots` virtual GPU slots, plus a `gpu-local`
    instance with the real GPUs when there are any. Both are on-demand (nobody claims a laptop)."""
    if cpu_slots < 1:
        raise FieldError("cpuSlots", "must be >= 1")
    if gpu_count < 0:
        raise FieldError("gpuCount", "must be >= 0")
    types = [InstanceType(CPU_LOCAL_TYPE, "cpu", cpu_slots, memory_gib, cpus)]
    instances = [Instance("local-cpu", CPU_LOCAL_TYPE, zone, ON_DEMAND)]
    if gpu_model and gpu_count > 0:
        types.append(InstanceType(GPU_LOCAL_TYPE, gpu_model, gpu_count, memory_gib, cpus))
        instances.append(Instance("local-gpu", GPU_LOCAL_TYPE, zone, ON_DEMAND))
    return Inventory(tuple(types), tuple(instances))


def declared_inventory(declared: Mapping[str, Any]) -> Inventory:
    """Parse a declared fleet of virtual instances (a dict as loaded from YAML):

        instanceTypes:
          - {id: H100-8x, gpuModel: H100, gpus: 8, memoryGib: 1024, cpus: 128}
        instances:
          - {type: h100-8x, zone: us-east-04a, count: 2, class: reserved, claim: team-a, joining: 1}

    `class` is `reserved` or `on_demand` (default on_demand); `claim` names the claim already holding the
    group; `joining` is true/false or how many of the group are still joining. Instance ids are
    `{type}-{zone}-{n}`, numbered per type and zone in declaration order. Errors name the offending key.
    """
    if not isinstance(declared, Mapping):
        raise FieldError("", "must be a mapping with instanceTypes and instances")
    _reject_unknown(declared, {"instanceTypes", "instances"}, "")
    types: list[InstanceType] = []
    known: dict[str, InstanceType] = {}
    for i, entry in enumerate(_list(declared, "instanceTypes")):
        instance_type = _parse_type(entry, f"instanceTypes[{i}]")
        if type_key(instance_type.id) in known:
            raise FieldError(f"instanceTypes[{i}].id", f"duplicate instance type {instance_type.id!r}")
        known[type_key(instance_type.id)] = instance_type
        types.append(instance_type)
    instances: list[Instance] = []
    next_number: dict[tuple[str, str], int] = {}
    for i, group in enumerate(_list(declared, "instances")):
        instances.extend(_parse_group(group, f"instances[{i}]", known, next_number))
    return Inventory(tuple(types), tuple(instances))


def _parse_type(entry: Any, path: str) -> InstanceType:
    entry = _mapping(entry, path)
    _reject_unknown(entry, _TYPE_KEYS, path)
    return InstanceType(
        id=_string(entry, "id", path),
        gpu_model=_string(entry, "gpuModel", path),
        gpus=_integer(entry, "gpus", path, minimum=1),
        memory_gib=_integer(entry, "memoryGib", path, minimum=0, default=0),
        cpus=_integer(entry, "cpus", path, minimum=0, default=0),
    )


def _parse_group(
    group: Any, path: str, known: Mapping[str, InstanceType], next_number: dict[tuple[str, str], int]
) -> list[Instance]:
    group = _mapping(group, path)
    _reject_unknown(group, _GROUP_KEYS, path)
    type_name = _string(group, "type", path)
    instance_type = known.get(type_key(type_name))
    if instance_type is None:
        names = ", ".join(t.id for t in known.values()) or "none declared"
        raise FieldError(f"{path}.type", f"unknown instance type {type_name!r}; known: {names}")
    zone = _string(group, "zone", path)
    count = _integer(group, "count", path, minimum=1, default=1)
    capacity_class = _capacity_class(group, path)
    claim = _string(group, "claim", path) if "claim" in group else None
    if claim is not None and capacity_class == ON_DEMAND:
        raise FieldError(f"{path}.claim", "only reserved instances can be held by a claim")
    joining = _joining_count(group, path, count)
    key = (type_key(instance_type.id), zone)
    first = next_number.get(key, 0)
    next_number[key] = first + count
    return [
        Instance(
            id=f"{type_key(instance_type.id)}-{zone}-{first + n}",
            instance_type=instance_type.id,
            zone=zone,
            capacity_class=capacity_class,
            claim_id=claim,
            # The last `joining` instances of the group are the ones still joining.
            joining=n >= count - joining,
        )
        for n in range(count)
    ]


def _capacity_class(group: Mapping[str, Any], path: str) -> CapacityClass:
    if "class" not in group:
        return ON_DEMAND
    try:
        return parse_capacity_class(group["class"])
    except ValueError as error:
        raise FieldError(f"{path}.class", str(error)) from None


def _joining_count(group: Mapping[str, Any], path: str, count: int) -> int:
    joining = group.get("joining", False)
    if isinstance(joining, bool):
        return count if joining else 0
    if isinstance(joining, int) and 0 <= joining <= count:
        return joining
    raise FieldError(f"{path}.joining", f"must be true, false or a count from 0 to {count}")


def _list(parent: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = parent.get(key, [])
    if not isinstance(value, list | tuple):
        raise FieldError(key, "must be a list")
    return value


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    return require_mapping(value, path)


def _reject_unknown(entry: Mapping[str, Any], allowed: set[str], path: str) -> None:
    reject_unknown_keys(entry, allowed, path)


def _string(entry: Mapping[str, Any], key: str, path: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FieldError(f"{path}.{key}", "required, a non-empty string")
    return value.strip()


def _integer(entry: Mapping[str, Any], key: str, path: str, *, minimum: int, default: int | None = None) -> int:
    if key not in entry and default is not None:
        return default
    value = entry.get(key)
    # bool is an int subclass; `gpus: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"{path}.{key}", "required, an integer")
    if value < minimum:
        raise FieldError(f"{path}.{key}", f"must be >= {minimum}")
    return value
