"""`schedule`: place each deployment's replicas on instances, by priority, with preemption above min."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby

from tide.scheduling.capacity import FreeCapacity
from tide.scheduling.decisions import DeploymentRequest, Pending, Placement, Preemption, ScheduleResult
from tide.scheduling.inventory import Inventory
from tide.scheduling.plan import Plan, missing_message, plan_for
from tide.scheduling.preemption import choose_eviction, victim_order
from tide.scheduling.state import DeploymentState, Resident


def schedule(
    inventory: Inventory,
    placements: Iterable[Placement],
    requests: Sequence[DeploymentRequest],
    now: float,
) -> ScheduleResult:
    """Decide where every requested replica runs.

    Existing placements stay where they are (minus surplus, lost, and preempted ones). New replicas go,
    in two rounds, first up to each deployment's `min`, then up to `replicas`; within a round, higher
    priority first, equal priorities taking turns one replica at a time in deployment-id order. A
    replica takes the best-fitting free instance of its type, reserved before on-demand, in zone order;
    failing that it preempts lower-priority replicas above their min (see `preemption`). Placements of
    deployments absent from `requests` are left alone and never preempted.
    """
    states = _states(inventory, requests)
    capacity = FreeCapacity(inventory)
    residents: list[list[Resident]] = [[] for _ in capacity.instances]
    kept_unknown, surplus, lost = _keep_existing(list(placements), states, capacity, residents)

    preempted: list[Preemption] = []
    by_priority = [
        list(group)
        for _, group in groupby(
            sorted(states.values(), key=lambda s: (-s.request.priority, s.request.deployment_id)),
            key=lambda s: s.request.priority,
        )
    ]
    for round_target in (_min_target, _full_target):
        for state in states.values():
            state.stuck = False
        for level in by_priority:
            turn = [s for s in level if s.count < round_target(s) and s.plan.problem is None]
            while turn:
                for state in turn:
                    if not _place_one(state, capacity, residents, preempted, now):
                        state.stuck = True
                turn = [s for s in turn if not s.stuck and s.count < round_target(s)]

    pending = [
        Pending(s.request.deployment_id, missing, missing_message(s.request, s.plan, capacity, missing))
        for s in states.values()
        if (missing := s.request.replicas - s.count) > 0
    ]
    started = [p for s in states.values() for p in s.started]
    final = kept_unknown + [p for s in states.values() for p in s.running] + started
    return ScheduleResult(
        placements=_sorted(final),
        started=_sorted(started),
        preempted=tuple(sorted(preempted, key=lambda e: _placement_key(e.placement))),
        surplus=_sorted(surplus),
        lost=_sorted(lost),
        pending=tuple(sorted(pending, key=lambda p: p.deployment_id)),
        decided_at=now,
    )


def _states(inventory: Inventory, requests: Sequence[DeploymentRequest]) -> dict[str, DeploymentState]:
    states: dict[str, DeploymentState] = {}
    # Many deployments share a shape; their plans are the same.
    plans: dict[tuple[str, int, tuple[str, ...], tuple[str, ...]], Plan] = {}
    for request in requests:
        if request.deployment_id in states:
            raise ValueError(f"deployment {request.deployment_id!r} is requested twice")
        shape = (request.instance_type, request.gpu_count, request.capacity_classes, request.zones)
        plan = plans.get(shape)
        if plan is None:
            plan = plans[shape] = plan_for(request, inventory)
        states[request.deployment_id] = DeploymentState(request, plan)
    return states


def _keep_existing(
    existing: list[Placement],
    states: dict[str, DeploymentState],
    capacity: FreeCapacity,
    residents: list[list[Resident]],
) -> tuple[list[Placement], list[Placement], list[Placement]]:
    """Account for the replicas already placed; return (kept of unknown deployments, surplus, lost)."""
    kept_unknown: list[Placement] = []
    lost: list[Placement] = []
    for placement in existing:
        state = states.get(placement.deployment_id)
        if state is not None:
            state.taken_replica_ids.add(placement.replica_id)
    on_instances: list[Placement] = []
    for placement in existing:
        (on_instances if placement.instance_id in capacity.position else lost).append(placement)
    surplus = _surplus(on_instances, states)
    surplus_ids = {id(p) for p in surplus}
    # Higher priority keeps its GPUs first if the input oversubscribes an instance.
    for placement in sorted(
        (p for p in on_instances if id(p) not in surplus_ids), key=lambda p: _keep_order(p, states)
    ):
        position = capacity.position[placement.instance_id]
        if capacity.free[position] < placement.gpus:
            lost.append(placement)
            continue
        capacity.take(position, placement.gpus)
        state = states.get(placement.deployment_id)
        if state is None:
            kept_unknown.append(placement)
        else:
            state.running.append(placement)
            residents[position].append((state, placement))
    for here in residents:
        here.sort(key=victim_order)
    return kept_unknown, surplus, lost


def _surplus(placements: list[Placement], states: dict[str, DeploymentState]) -> list[Placement]:
    """Replicas above what their deployment wants now; the newest go first."""
    by_deployment: dict[str, list[Placement]] = {}
    for placement in placements:
        if placement.deployment_id in states:
            by_deployment.setdefault(placement.deployment_id, []).append(placement)
    surplus: list[Placement] = []
    for deployment_id, mine in by_deployment.items():
        extra = len(mine) - states[deployment_id].request.replicas
        if extra > 0:
            newest_first = sorted(mine, key=lambda p: (-p.since, _placement_key(p)))
            surplus.extend(newest_first[:extra])
    return surplus


def _keep_order(placement: Placement, states: dict[str, DeploymentState]) -> tuple[int, float, str, str]:
    state = states.get(placement.deployment_id)
    # Placements of unknown deployments cannot be weighed: they keep their GPUs like the top priority.
    priority = state.request.priority if state is not None else 1 << 30
    return (-priority, placement.since, placement.deployment_id, placement.replica_id)


def _min_target(state: DeploymentState) -> int:
    return min(state.request.min_replicas, state.request.replicas)


def _full_target(state: DeploymentState) -> int:
    return state.request.replicas


def _place_one(
    state: DeploymentState,
    capacity: FreeCapacity,
    residents: list[list[Resident]],
    preempted: list[Preemption],
    now: float,
) -> bool:
    request, buckets = state.request, state.plan.buckets
    for key in buckets:
        position = capacity.best_fit(key, request.gpu_count)
        if position is not None:
            _start(state, capacity, position, now)
            return True
    eviction = choose_eviction(capacity, residents, buckets, request.gpu_count, request.priority)
    if eviction is None:
        return False
    instance_id = capacity.instances[eviction.position].id
    for victim_state, victim in eviction.victims:
        victim_state.running.remove(victim)
        residents[eviction.position].remove((victim_state, victim))
        capacity.give_back(eviction.position, victim.gpus)
        preempted.append(
            Preemption(
                victim,
                request.deployment_id,
                f"preempted by {request.deployment_id} (priority {request.priority} > "
                f"{victim_state.request.priority}) for a replica needing {request.gpu_count} GPUs on {instance_id}",
            )
        )
    _start(state, capacity, eviction.position, now)
    return True


def _start(state: DeploymentState, capacity: FreeCapacity, position: int, now: float) -> None:
    gpus = state.request.gpu_count
    capacity.take(position, gpus)
    state.started.append(
        Placement(state.request.deployment_id, state.new_replica_id(), capacity.instances[position].id, gpus, now)
    )


def _placement_key(placement: Placement) -> tuple[str, str]:
    return (placement.deployment_id, placement.replica_id)


def _sorted(placements: list[Placement]) -> tuple[Placement, ...]:
    return tuple(sorted(placements, key=_placement_key))
