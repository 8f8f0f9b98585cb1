"""Parked replicas as the controller keeps them: where each was, since when, and which to wake, expire
or evict. Pure functions over the controller's per-deployment state, the clock a parameter (the I/O is in the
controller: it reads the backend and the inventory, calls these and parks, wakes or stops what they say).

A parked replica holds no GPU in the scheduler's books (its placement is released when it parks) but
remembers the instance and GPU ids it ran on: it can wake only there. If another replica has been given
those GPUs meanwhile, the parked one is stopped before the other starts (never two engines on one GPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tide.autoscale.policy import PARKED_COST, Parking
from tide.backends.base import ReplicaPhase
from tide.control.runtime import DeploymentRuntime, ParkedAt
from tide.control.scaling import measured_wake
from tide.scheduling import Inventory, Placement


def parked_run_id(replica_id: str) -> str:
    """The usage run of a replica's parked time (on no GPU), metered apart from its running time."""
    return f"{replica_id}/parked"


def wake_order(runtime: DeploymentRuntime) -> list[str]:
    """Parked replicas of the current template, most recently parked first (its caches are the warmest)."""
    spec = runtime.spec
    template = spec.replica_template() if spec is not None else None
    ready_to_wake = [
        rid
        for rid, at in runtime.parked.items()
        if (state := runtime.replicas.get(rid)) is not None
        and state.phase is ReplicaPhase.PARKED
        and state.template == template
    ]
    return sorted(ready_to_wake, key=lambda rid: -runtime.parked[rid].since)


ASSUMED_WAKE_S = 1.0  # a deployment's wake time until one of its replicas has woken


def context(runtime: DeploymentRuntime) -> Parking | None:
    """What the autoscaling policy sees of parking (PolicyContext.parking), as `tide sim` gives it: None
    when a scale-down stops replicas; else the replicas a scale-up would wake, when each parked (oldest
    first), the measured wake time, the retention and a parked replica's relative cost."""
    spec = runtime.spec
    if spec is None or not spec.autoscaling.parks:
        return None
    wakeable = wake_order(runtime)
    since = tuple(sorted(runtime.parked[rid].since for rid in wakeable))
    wake_s = measured_wake(runtime.replicas.values())
    return Parking(
        len(wakeable),
        ASSUMED_WAKE_S if wake_s is None else wake_s,
        spec.autoscaling.parking_retention_s,
        PARKED_COST,
        since,
    )


def beyond_keep(runtime: DeploymentRuntime, keep: int) -> list[str]:
    """Parked replicas past the `keep` most recently parked (the policy stops them: the least recently
    parked go first, as a scale-up wakes the most recently parked first)."""
    parked = sorted(
        (rid for rid in runtime.parked if _is_parked(runtime, rid)), key=lambda rid: -runtime.parked[rid].since
    )
    return parked[max(0, keep) :]


def queue_wakes(runtime: DeploymentRuntime, queued: int, concurrency: int) -> int:
    """Parked replicas to wake at once for `queued` requests waiting behind busy replicas: enough that the
    replicas already starting or waking, and the woken ones, have room for them, as `tide sim` wakes for
    its queue (`Policy.wakes_for_queue`). At most the parked replicas that can wake."""
    coming = sum(1 for r in runtime.replicas.values() if r.phase.starting or r.phase is ReplicaPhase.WAKING)
    missing = -(-(queued - coming * concurrency) // concurrency)  # ceil
    return max(0, min(missing, len(wake_order(runtime))))


def slot_for(at: ParkedAt, slots: Sequence[Placement]) -> Placement | None:
    """A slot the scheduler offers on the parked replica's own instance, of its size."""
    return next((s for s in slots if s.instance_id == at.instance_id and s.gpus == at.gpus), None)


def gpus_in_use(runtimes: Iterable[DeploymentRuntime], instance_id: str) -> set[int]:
    """GPU ids that running (or starting) replicas hold on an instance."""
    return {
        i
        for runtime in runtimes
        for rid, ids in runtime.gpu_ids.items()
        if (p := runtime.placements.get(rid)) is not None and p.instance_id == instance_id
        for i in ids
    }


def overlapping_parked(
    runtimes: Iterable[DeploymentRuntime], instance_id: str, gpu_ids: Sequence[int]
) -> list[tuple[DeploymentRuntime, str]]:
    """Parked replicas on any of these GPUs: to stop before another engine starts on them."""
    wanted = set(gpu_ids)
    return [
        (runtime, rid)
        for runtime in runtimes
        for rid, at in runtime.parked.items()
        if at.instance_id == instance_id and wanted & set(at.gpu_ids)
    ]


def expired(runtime: DeploymentRuntime, now: float) -> list[str]:
    """Parked replicas to stop: past the retention, of an old template, or parking no longer allowed."""
    spec = runtime.spec
    if spec is None or spec.disabled or not spec.autoscaling.parks:
        return [rid for rid in runtime.parked if _is_parked(runtime, rid)]
    template = spec.replica_template()
    retention = spec.autoscaling.parking_retention_s
    return [
        rid
        for rid, at in runtime.parked.items()
        if _is_parked(runtime, rid) and (now - at.since >= retention or runtime.replicas[rid].template != template)
    ]


def over_host_memory(
    runtimes: Iterable[DeploymentRuntime], limits: Mapping[str, int]
) -> list[tuple[DeploymentRuntime, str]]:
    """Parked replicas to stop so that, on each instance, what parked replicas hold in host memory fits
    its bound (`limits`: instance id -> bytes; an instance without one is unbounded). The least recently
    parked go first: they are the least likely to be woken next."""
    by_instance: dict[str, list[tuple[float, DeploymentRuntime, str, int]]] = {}
    for runtime in runtimes:
        for rid, at in runtime.parked.items():
            if at.instance_id in limits and _is_parked(runtime, rid):
                by_instance.setdefault(at.instance_id, []).append((at.since, runtime, rid, at.host_bytes))
    evicted: list[tuple[DeploymentRuntime, str]] = []
    for instance_id, entries in by_instance.items():
        held = sum(size for *_, size in entries)
        for _since, runtime, rid, size in sorted(entries, key=lambda e: e[0]):
            if held <= limits[instance_id]:
                break
            evicted.append((runtime, rid))
            held -= size
    return evicted


def displaced(runtime: DeploymentRuntime, free_gpus: Mapping[str, int]) -> list[str]:
    """Parked replicas that can no longer wake where they ran: other replicas now hold the GPUs of their
    instance (or the instance is gone). They are stopped; a normal start happens where there is room."""
    return [
        rid
        for rid, at in runtime.parked.items()
        if _is_parked(runtime, rid) and at.gpus > 0 and free_gpus.get(at.instance_id, 0) < at.gpus
    ]


def _is_parked(runtime: DeploymentRuntime, rid: str) -> bool:
    state = runtime.replicas.get(rid)
    return state is not None and state.phase is ReplicaPhase.PARKED


def may_park(runtime: DeploymentRuntime, replica_id: str) -> bool:
    """Whether a scale-down parks this replica instead of stopping it: the deployment parks (and is neither
    disabled nor being deleted) and the replica is ready, in rotation and of the current template."""
    spec, state = runtime.spec, runtime.replicas.get(replica_id)
    return (
        spec is not None
        and spec.autoscaling.parks
        and not spec.disabled
        and not runtime.record.deleting
        and state is not None
        and state.phase is ReplicaPhase.READY
        and state.template == spec.replica_template()
        and replica_id not in runtime.draining
    )


def parked_at(placement: Placement | None, gpu_ids: tuple[int, ...], host_bytes: int, now: float) -> ParkedAt:
    """What the controller remembers of a replica that has just parked (`placement`: where it ran)."""
    return ParkedAt(
        instance_id=placement.instance_id if placement else "",
        gpus=placement.gpus if placement else 0,
        gpu_ids=gpu_ids,
        since=now,
        host_bytes=host_bytes,
    )


def memory_limits(inventory: Inventory, fraction: float) -> dict[str, int]:
    """Bytes of host memory parked replicas may hold, per instance whose type says its memory (`fraction`
    of it); an instance of a type without a memory size is not bounded."""
    limits = {}
    for instance in inventory.instances:
        memory_gib = inventory.type_of(instance).memory_gib
        if memory_gib > 0:
            limits[instance.id] = int(memory_gib * fraction * 2**30)
    return limits


@dataclass(frozen=True)
class WakePlan:
    """Which parked replicas wake into which of the scheduler's slots, which are stopped instead (their
    GPUs were taken: a new replica starts), and the slots left for new replicas."""

    wake: tuple[tuple[str, Placement], ...]
    stop: tuple[str, ...]
    remaining: tuple[Placement, ...]


def plan_wakes(
    runtime: DeploymentRuntime, slots: Sequence[Placement], runtimes: Iterable[DeploymentRuntime]
) -> WakePlan:
    """Wake parked replicas (most recently parked first) into the slots offered on their own instances,
    of their size. One whose GPU ids a running replica (of any deployment in `runtimes`, or one woken
    earlier in this plan) holds is stopped instead."""
    if not runtime.parked:
        # The common case, asked once per deployment placed: do not walk every deployment (10,000 of them).
        return WakePlan((), (), tuple(slots))
    everyone = list(runtimes)
    remaining = list(slots)
    wake: list[tuple[str, Placement]] = []
    stop: list[str] = []
    woken: dict[str, set[int]] = {}  # instance id -> GPU ids this plan has woken replicas onto
    for replica_id in wake_order(runtime):
        at = runtime.parked[replica_id]
        slot = slot_for(at, remaining)
        if slot is None:
            continue
        if set(at.gpu_ids) & (gpus_in_use(everyone, at.instance_id) | woken.get(slot.instance_id, set())):
            stop.append(replica_id)
            continue
        remaining.remove(slot)
        wake.append((replica_id, slot))
        woken.setdefault(slot.instance_id, set()).update(at.gpu_ids)
    return WakePlan(tuple(wake), tuple(stop), tuple(remaining))


def retention_stops(
    runtime: DeploymentRuntime, now: float, keep: int | None, free_gpus: Mapping[str, int]
) -> list[tuple[str, str]]:
    """Parked replicas to stop after a decision, each with why (once, in this order): past the retention
    or of an old template or parking no longer allowed (`expired`); beyond the policy's `keep` (None: the
    policy said nothing this time); displaced from their GPUs (`free_gpus`: instance id -> GPUs free)."""
    stops: dict[str, str] = {}
    for replica_id in expired(runtime, now):
        stops.setdefault(replica_id, "past its retention, of an old template, or parking is off")
    if keep is not None:
        for replica_id in beyond_keep(runtime, keep):
            stops.setdefault(replica_id, f"the policy keeps {keep} parked")
    if runtime.parked:
        for replica_id in displaced(runtime, free_gpus):
            stops.setdefault(replica_id, "its GPUs were given to another replica")
    return list(stops.items())


def queue_wake_target(runtime: DeploymentRuntime, desired: int, queued: int) -> int:
    """The replica count to ask for when `queued` requests arrived behind busy replicas since the last
    decision: at least the active replicas (starting, ready, waking) plus the parked ones to wake for
    them (`queue_wakes`), within the deployment's max. `desired`: what the autoscaler asked for."""
    spec = runtime.spec
    if not queued or spec is None:
        return desired
    wakes = queue_wakes(runtime, queued, spec.autoscaling.concurrency)
    active = sum(
        1 for r in runtime.replicas.values() if r.phase.starting or r.phase in (ReplicaPhase.READY, ReplicaPhase.WAKING)
    )
    return max(desired, min(spec.autoscaling.max, active + wakes))
