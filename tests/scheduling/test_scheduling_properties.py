"""Property-style checks over random fleets and requests (hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scheduling.fleet import H100, L40, ZONE_A, ZONE_B
from tide.scheduling import DeploymentRequest, Instance, Inventory, Placement, ScheduleResult, schedule

ZONES = (ZONE_A, ZONE_B)


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    count = draw(st.integers(1, 8))
    instances = []
    for n in range(count):
        capacity_class = draw(st.sampled_from(["reserved", "on_demand"]))
        claim = draw(st.sampled_from([None, "c"])) if capacity_class == "reserved" else None
        instances.append(
            Instance(
                f"i{n}",
                draw(st.sampled_from(["H100", "l40-4x"])),
                draw(st.sampled_from(ZONES)),
                capacity_class,  # type: ignore[arg-type]
                claim,
                draw(st.booleans()),
            )
        )
    return Inventory((H100, L40), tuple(instances))


@st.composite
def request_lists(draw: st.DrawFn) -> list[DeploymentRequest]:
    requests = []
    for n in range(draw(st.integers(1, 6))):
        replicas = draw(st.integers(0, 6))
        requests.append(
            DeploymentRequest(
                f"d{n}",
                replicas,
                draw(st.sampled_from(["h100", "L40-4X"])),
                draw(st.sampled_from([1, 2, 4, 8])),
                draw(st.sampled_from([("reserved",), ("CAPACITY_CLASS_ON_DEMAND",), ("on_demand", "reserved")])),
                draw(st.sampled_from([(), (ZONE_A,), (ZONE_B, ZONE_A)])),
                draw(st.integers(0, 3)) * 100,
                draw(st.integers(0, replicas)),
            )
        )
    return requests


def check(
    inventory: Inventory, before: list[Placement], requests: list[DeploymentRequest], result: ScheduleResult
) -> None:
    by_instance: Counter[str] = Counter()
    for placement in result.placements:
        by_instance[placement.instance_id] += placement.gpus
    for instance_id, used in by_instance.items():
        instance = inventory.instance(instance_id)
        assert instance is not None and used <= inventory.type_of(instance).gpus
    wanted = {r.deployment_id: r for r in requests}
    for placement in result.started:
        request = wanted[placement.deployment_id]
        instance = inventory.instance(placement.instance_id)
        assert instance is not None and not instance.joining
        assert inventory.type_of(instance) == inventory.find_type(request.instance_type)
        assert instance.capacity_class in request.capacity_classes
        assert instance.capacity_class == "on_demand" or instance.claim_id is not None
        assert not request.zones or instance.zone in request.zones
    gone = {(p.deployment_id, p.replica_id) for p in result.surplus + result.lost}
    preempted = Counter(e.placement.deployment_id for e in result.preempted)
    for deployment_id, count in preempted.items():
        request = wanted[deployment_id]
        running = sum(
            1 for p in before if p.deployment_id == deployment_id and (deployment_id, p.replica_id) not in gone
        )
        assert count <= running - request.min_replicas  # only above min
    for event in result.preempted:
        assert wanted[event.by_deployment_id].priority > wanted[event.placement.deployment_id].priority
    for request in requests:
        placed = len(result.placements_for(request.deployment_id))
        pending = result.pending_for(request.deployment_id)
        assert placed + (pending.count if pending else 0) == request.replicas
        if pending:
            # Pending only when no usable instance it may use has the GPUs free.
            for instance in inventory.instances:
                fits = (
                    not instance.joining
                    and (instance.capacity_class == "on_demand" or instance.claim_id is not None)
                    and instance.capacity_class in request.capacity_classes
                    and (not request.zones or instance.zone in request.zones)
                    and inventory.type_of(instance) == inventory.find_type(request.instance_type)
                )
                free = inventory.type_of(instance).gpus - by_instance[instance.id]
                assert not (fits and free >= request.gpu_count), (request, instance, pending)


@settings(max_examples=150, deadline=None)
@given(inventory=inventories(), first=request_lists(), second=request_lists())
def test_placements_never_exceed_gpus_and_respect_every_rule(
    inventory: Inventory, first: list[DeploymentRequest], second: list[DeploymentRequest]
) -> None:
    earlier = schedule(inventory, [], first, now=0)
    check(inventory, [], first, earlier)
    # Second decision on top of the first: new shapes, priorities and sizes force surplus and preemption.
    later = schedule(inventory, earlier.placements, second, now=60)
    check(inventory, list(earlier.placements), second, later)
