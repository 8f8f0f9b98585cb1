"""Which running replicas to preempt so that a higher-priority replica fits.

Only replicas of strictly lower priority, and only above their deployment's `min`, may go. Among the
instances where enough could be freed, the choice prefers: the lowest highest-priority among the victims,
then the fewest victims, then the replica's own placement preference (class, zone), then instance id.
On one instance, victims are taken lowest priority first and, within a priority, newest first (the least
work lost: it may still be loading).
"""

from __future__ import annotations

from dataclasses import dataclass

from tide.scheduling.capacity import BucketKey, FreeCapacity
from tide.scheduling.state import Resident


@dataclass(frozen=True)
class Eviction:
    position: int
    victims: tuple[Resident, ...]
    rank: tuple[int, int, int, int]


def choose_eviction(
    capacity: FreeCapacity,
    residents: list[list[Resident]],
    buckets: tuple[BucketKey, ...],
    gpus: int,
    priority: int,
) -> Eviction | None:
    """`residents[position]` must be sorted by `victim_order`."""
    best: Eviction | None = None
    for preference, key in enumerate(buckets):
        bucket = capacity.buckets.get(key)
        if bucket is None:
            continue
        for position in bucket.members:
            here = residents[position]
            if not here or here[0][0].request.priority >= priority:
                continue
            # Cheap bound: this instance's victims are at least as important as its least important
            # resident; later candidates only win on a strictly better (priority, count).
            lowest = here[0][0].request.priority
            if best is not None and (lowest, 1) >= best.rank[:2]:
                continue
            victims = _victims_on_instance(here, priority, capacity.free[position], gpus)
            if victims is None:
                continue
            rank = (max(state.request.priority for state, _ in victims), len(victims), preference, position)
            if best is None or rank < best.rank:
                best = Eviction(position, victims, rank)
    return best


def victim_order(resident: Resident) -> tuple[int, float, str, str]:
    """Lowest priority first; within a priority the newest replica (least work lost, maybe still loading)."""
    state, placement = resident
    return (state.request.priority, -placement.since, placement.deployment_id, placement.replica_id)


def _victims_on_instance(residents: list[Resident], priority: int, free: int, gpus: int) -> tuple[Resident, ...] | None:
    """Greedy in `victim_order` over the residents below `priority`, each deployment giving up at most
    its replicas above min. (A hot loop: hence no helpers.)"""
    may_lose: dict[str, int] = {}
    chosen: list[Resident] = []
    for resident in residents:
        if free >= gpus:
            break
        state, placement = resident
        request = state.request
        if request.priority >= priority:
            break
        left = may_lose.get(request.deployment_id)
        if left is None:
            left = len(state.running) + len(state.started) - request.min_replicas
        if left <= 0:
            may_lose[request.deployment_id] = 0
            continue
        may_lose[request.deployment_id] = left - 1
        chosen.append(resident)
        free += placement.gpus
    if free < gpus:
        return None
    # Greedy may have taken a small replica that a later, larger one made unnecessary: spare it.
    for resident in reversed(list(chosen)):
        if free - resident[1].gpus >= gpus:
            chosen.remove(resident)
            free -= resident[1].gpus
    return tuple(chosen)
