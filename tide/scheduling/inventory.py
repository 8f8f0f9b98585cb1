"""The inventory: instance types, the instances that exist, and what is free on them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from tide.errors import FieldError

CapacityClass = Literal["reserved", "on_demand"]
RESERVED: CapacityClass = "reserved"
ON_DEMAND: CapacityClass = "on_demand"
CAPACITY_CLASSES: tuple[CapacityClass, ...] = (RESERVED, ON_DEMAND)

# API.md spells the classes as enums; declared inventories and code use the short names.
_CLASS_ALIASES: dict[str, CapacityClass] = {
    "reserved": RESERVED,
    "capacity_class_reserved": RESERVED,
    "on_demand": ON_DEMAND,
    "on-demand": ON_DEMAND,
    "ondemand": ON_DEMAND,
    "capacity_class_on_demand": ON_DEMAND,
}


def parse_capacity_class(value: str) -> CapacityClass:
    """`"CAPACITY_CLASS_RESERVED"` or `"reserved"` -> `"reserved"`; raises ValueError otherwise."""
    found = _CLASS_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"unknown capacity class {value!r}; use CAPACITY_CLASS_RESERVED or CAPACITY_CLASS_ON_DEMAND")
    return found


def type_key(type_id: str) -> str:
    """Instance type ids compare case-insensitively (API.md): this is the comparison key."""
    return type_id.strip().lower()


@dataclass(frozen=True)
class InstanceType:
    id: str
    gpu_model: str
    gpus: int
    memory_gib: int
    cpus: int


@dataclass(frozen=True)
class Instance:
    id: str
    instance_type: str
    zone: str
    capacity_class: CapacityClass
    claim_id: str | None = None
    # A joining instance exists (a claim may hold it) but cannot run replicas yet.
    joining: bool = False


class PlacedReplica(Protocol):
    """What `Inventory.free_gpus` needs to know about a placed replica."""

    @property
    def instance_id(self) -> str: ...

    @property
    def gpus(self) -> int: ...


@dataclass(frozen=True)
class Inventory:
    types: tuple[InstanceType, ...]
    instances: tuple[Instance, ...]
    _types_by_key: dict[str, InstanceType] = field(init=False, repr=False, compare=False)
    _instances_by_id: dict[str, Instance] = field(init=False, repr=False, compare=False)
    _zones_by_type: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types))
        object.__setattr__(self, "instances", tuple(self.instances))
        types_by_key: dict[str, InstanceType] = {}
        for index, instance_type in enumerate(self.types):
            key = type_key(instance_type.id)
            if not key:
                raise FieldError(f"types[{index}].id", "must not be empty")
            if key in types_by_key:
                raise FieldError(f"types[{index}].id", f"duplicate instance type {instance_type.id!r}")
            if instance_type.gpus < 1:
                raise FieldError(f"types[{index}].gpus", "must be >= 1")
            types_by_key[key] = instance_type
        instances_by_id: dict[str, Instance] = {}
        zones_by_type: dict[str, set[str]] = {}
        for index, instance in enumerate(self.instances):
            if instance.id in instances_by_id:
                raise FieldError(f"instances[{index}].id", f"duplicate instance id {instance.id!r}")
            if type_key(instance.instance_type) not in types_by_key:
                raise FieldError(
                    f"instances[{index}].instanceType", f"unknown instance type {instance.instance_type!r}"
                )
            if instance.capacity_class not in CAPACITY_CLASSES:
                raise FieldError(
                    f"instances[{index}].capacityClass", f"unknown capacity class {instance.capacity_class!r}"
                )
            instances_by_id[instance.id] = instance
            zones_by_type.setdefault(type_key(instance.instance_type), set()).add(instance.zone)
        object.__setattr__(self, "_types_by_key", types_by_key)
        object.__setattr__(self, "_instances_by_id", instances_by_id)
        object.__setattr__(self, "_zones_by_type", {k: frozenset(v) for k, v in zones_by_type.items()})

    def find_type(self, type_id: str) -> InstanceType | None:
        """The instance type named `type_id`, in any letter case."""
        return self._types_by_key.get(type_key(type_id))

    def type_of(self, instance: Instance) -> InstanceType:
        return self._types_by_key[type_key(instance.instance_type)]

    def instance(self, instance_id: str) -> Instance | None:
        return self._instances_by_id.get(instance_id)

    def zones(self) -> list[str]:
        return sorted({instance.zone for instance in self.instances})

    def zones_offering(self, type_id: str) -> frozenset[str]:
        """Zones that have at least one instance (joining or not) of the type."""
        return self._zones_by_type.get(type_key(type_id), frozenset())

    def zone_instance_types(self) -> dict[str, list[str]]:
        """`{zone: [type ids]}` for the parameters endpoint (`zoneInstanceTypes`), sorted."""
        offered: dict[str, set[str]] = {}
        for instance in self.instances:
            offered.setdefault(instance.zone, set()).add(self.type_of(instance).id)
        return {zone: sorted(offered[zone], key=type_key) for zone in sorted(offered)}

    def free_gpus(self, placements: Iterable[PlacedReplica]) -> dict[str, int]:
        """GPUs left on each instance after `placements` (replicas on unknown instances are ignored)."""
        free = {instance.id: self.type_of(instance).gpus for instance in self.instances}
        for placement in placements:
            if placement.instance_id in free:
                free[placement.instance_id] -= placement.gpus
        return free

    def with_claims(self, claim_by_instance: Mapping[str, str | None]) -> Inventory:
        """A copy where each instance named in the mapping is held by that claim (None releases it)."""
        instances = tuple(
            replace(instance, claim_id=claim_by_instance[instance.id]) if instance.id in claim_by_instance else instance
            for instance in self.instances
        )
        return Inventory(self.types, instances)
