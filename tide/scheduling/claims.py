"""Capacity claims, the pure part: validation, status, and which reserved instances each claim holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from tide.errors import FieldError
from tide.scheduling.inventory import RESERVED, Instance, Inventory, type_key

CAPACITY_TYPE_SERVERLESS = "CAPACITY_TYPE_SERVERLESS"
CAPACITY_TYPE_CUSTOMER = "CAPACITY_TYPE_CUSTOMER"
CAPACITY_TYPES = (CAPACITY_TYPE_SERVERLESS, CAPACITY_TYPE_CUSTOMER)

_RESOURCE_KEYS = {"instanceId", "instanceCount", "capacityType", "zones"}


@dataclass(frozen=True)
class ClaimSpec:
    """A validated claim: `instance_type` spelled as the inventory spells it, zones in preference order."""

    instance_type: str
    instance_count: int
    capacity_type: str
    zones: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    id: str
    spec: ClaimSpec


class ClaimStatus(NamedTuple):
    """`allocated`: held instances that have joined. `pending`: the rest of `instanceCount` (still joining,
    or not found yet)."""

    allocated: int
    pending: int


def validate_claim(spec: Mapping[str, Any] | Any, inventory: Inventory) -> ClaimSpec:
    """Check a claim spec (API JSON `{"resources": {...}}`, or a model with `model_dump(by_alias=True)`)
    against API.md and the inventory; raise `FieldError(field, message)` naming the camelCase field."""
    if not isinstance(spec, Mapping) and hasattr(spec, "model_dump"):
        spec = spec.model_dump(by_alias=True)
    if not isinstance(spec, Mapping):
        raise FieldError("resources", "a claim spec is a mapping with a resources object")
    resources = spec.get("resources")
    if not isinstance(resources, Mapping):
        raise FieldError("resources", "required, an object with instanceId, instanceCount and zones")
    for key in resources:
        if key not in _RESOURCE_KEYS:
            raise FieldError(f"resources.{key}", f"unknown field; allowed: {', '.join(sorted(_RESOURCE_KEYS))}")
    zones = _zones(resources.get("zones"), inventory)
    return ClaimSpec(
        instance_type=_instance_type(resources.get("instanceId"), zones, inventory),
        instance_count=_instance_count(resources.get("instanceCount")),
        capacity_type=_capacity_type(resources.get("capacityType", CAPACITY_TYPE_SERVERLESS)),
        zones=zones,
    )


def _zones(value: Any, inventory: Inventory) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise FieldError("resources.zones", "required, a non-empty list of zones in order of preference")
    known = inventory.zones()
    zones: list[str] = []
    for index, zone in enumerate(value):
        field = f"resources.zones[{index}]"
        if not isinstance(zone, str) or not zone.strip():
            raise FieldError(field, "must be a non-empty string")
        if zone in zones:
            raise FieldError(field, f"zone {zone!r} is listed twice")
        if zone not in known:
            raise FieldError(field, f"unknown zone {zone!r}; known zones: {', '.join(known) or 'none'}")
        zones.append(zone)
    return tuple(zones)


def _instance_type(value: Any, zones: tuple[str, ...], inventory: Inventory) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError("resources.instanceId", "required, an instance type")
    instance_type = inventory.find_type(value)
    if instance_type is None:
        known = ", ".join(t.id for t in inventory.types) or "none"
        raise FieldError("resources.instanceId", f"unknown instance type {value!r}; known: {known}")
    offered_in = sorted(inventory.zones_offering(instance_type.id))
    if not any(zone in offered_in for zone in zones):
        raise FieldError(
            "resources.instanceId",
            f"instance type {instance_type.id} is not offered in zones {', '.join(zones)}; "
            f"it is offered in: {', '.join(offered_in) or 'no zone'}",
        )
    return instance_type.id


def _instance_count(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():  # 2.0 is 2 (JSON does not tell them apart)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("resources.instanceCount", "required, an integer >= 1")
    if value < 1:
        raise FieldError("resources.instanceCount", f"must be >= 1 (got {value})")
    return value


def _capacity_type(value: Any) -> str:
    if value not in CAPACITY_TYPES:
        raise FieldError("resources.capacityType", f"must be one of {', '.join(CAPACITY_TYPES)} (got {value!r})")
    return str(value)


def claim_status(claim: Claim, inventory: Inventory) -> ClaimStatus:
    """Allocated = instances this claim holds that have joined (at most `instanceCount`); the rest pending."""
    joined = sum(1 for i in inventory.instances if i.claim_id == claim.id and not i.joining)
    allocated = min(joined, claim.spec.instance_count)
    return ClaimStatus(allocated=allocated, pending=claim.spec.instance_count - allocated)


def assign_claims(claims: Sequence[Claim], inventory: Inventory) -> Inventory:
    """Decide which reserved instances each claim holds, and return the inventory with `claim_id` set.

    Stable: a claim keeps the instances it already holds while they still match its spec. Claims are
    served in the order given (first come, first served); each takes free reserved instances of its type
    from its zones in order of preference, within a zone joined instances before joining ones, then by
    instance id. A claim holding more than it asks for lets go of the instances in its least preferred
    zones first (joining before joined). Instances of deleted claims are released.
    """
    by_id = {claim.id: claim for claim in claims}
    holder: dict[str, str | None] = {}
    held: dict[str, list[Instance]] = {claim.id: [] for claim in claims}
    for instance in inventory.instances:
        claim = by_id.get(instance.claim_id) if instance.claim_id is not None else None
        if claim is not None and instance.capacity_class == RESERVED and _matches(instance, claim):
            held[claim.id].append(instance)
        else:
            holder[instance.id] = None
    for claim in claims:
        keep = sorted(held[claim.id], key=partial(_preference, claim=claim))
        for instance in keep[claim.spec.instance_count :]:
            holder[instance.id] = None
        for instance in keep[: claim.spec.instance_count]:
            holder[instance.id] = claim.id
    free = sorted(
        (i for i in inventory.instances if i.capacity_class == RESERVED and holder[i.id] is None),
        key=lambda i: i.id,
    )
    for claim in claims:
        wanted = claim.spec.instance_count - sum(1 for owner in holder.values() if owner == claim.id)
        if wanted <= 0:
            continue
        candidates = sorted((i for i in free if _matches(i, claim)), key=partial(_preference, claim=claim))
        for instance in candidates[:wanted]:
            holder[instance.id] = claim.id
            free.remove(instance)
    changed = {i.id: holder[i.id] for i in inventory.instances if i.claim_id != holder[i.id]}
    return inventory.with_claims(changed) if changed else inventory


def _matches(instance: Instance, claim: Claim) -> bool:
    return type_key(instance.instance_type) == type_key(claim.spec.instance_type) and instance.zone in claim.spec.zones


def _preference(instance: Instance, claim: Claim) -> tuple[int, bool, str]:
    return (claim.spec.zones.index(instance.zone), instance.joining, instance.id)
