"""Parked replicas as the controller keeps them: where each was, since when, and which to wake, expire
or evict. Pure functions over the controller's per-deployment state (the I/O is in the controller).

A parked replica holds no GPU in the scheduler's books (its placement is released when it parks) but
remembers the instance and GPU ids it ran on: it can wake only there. If another replica has been given
those GPUs meanwhile, the parked one is stopped before the other starts (never two engines on one GPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tide.autoscale.policy import PARKED_COST, Parking
from tide.backends.base import ReplicaPhase
from tide.control.runtime import DeploymentRuntime, ParkedAt
from tide.control.scaling import measured_wake
from tide.scheduling import Placement


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
