"""Where replicas run, as the controller keeps it: what it asks the scheduler, and when a placed replica may
start. Pure functions over the controller's per-deployment state; the scheduler itself is
`tide.scheduling`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tide.control.lifecycle import CRASH_LOOP_THRESHOLD
from tide.control.runtime import DeploymentRuntime
from tide.scheduling import DeploymentRequest, Inventory, Placement

LOCAL_GPU_INSTANCE = "local-gpu"
CPU_GPU_MODEL = "cpu"  # the GPU model of `cpu-local`, whose "GPUs" are CPU slots (tide.scheduling.local_inventory)


def scheduled_placements(runtimes: Iterable[DeploymentRuntime]) -> list[Placement]:
    """The placements the scheduler weighs. Draining replicas are left out: their GPUs may be handed on now,
    and whoever gets them waits for the drain to end (`leaving_holders`). Counting them would ask for
    phantom replicas."""
    return [p for runtime in runtimes for rid, p in runtime.placements.items() if rid not in runtime.draining]


def failing(runtime: DeploymentRuntime) -> bool:
    """Known not to start (a replica failed, or the engine is in a crash loop) and nothing live to show
    for it: it must not hold capacity a healthy deployment could use."""
    known_bad = runtime.failure is not None or runtime.consecutive_crashes >= CRASH_LOOP_THRESHOLD
    return known_bad and not any(not r.phase.terminal for r in runtime.replicas.values())


def scheduling_requests(
    runtimes: Mapping[str, DeploymentRuntime],
    wants: Mapping[str, int],
    now: float | None = None,
    zones: Mapping[str, tuple[str, ...]] | None = None,
) -> list[DeploymentRequest]:
    """One request per deployment that runs replicas: what its autoscaler wants, plus its old-template
    replicas that keep their GPUs until the new ones are ready (surge-first rollout), in the zones its
    gateways allow (`zones` by deployment id; absent: every zone).

    A failing deployment asks for nothing while it backs off before its next try (given `now`), and
    otherwise only for leftover capacity: priority 0, no guaranteed min, so it never preempts nor keeps
    a healthy deployment waiting."""
    requests = []
    for deployment_id, desired in wants.items():
        runtime = runtimes[deployment_id]
        spec = runtime.spec
        assert spec is not None
        priority, min_replicas = spec.autoscaling.priority, min(spec.autoscaling.min, desired)
        if failing(runtime):
            priority, min_replicas = 0, 0
            if now is not None and now < runtime.next_start_at:
                desired = 0
        template = spec.replica_template()
        holding = sum(
            1
            for rid, r in runtime.replicas.items()
            if rid in runtime.placements and rid not in runtime.draining and r.template != template
        )
        requests.append(
            DeploymentRequest(
                deployment_id=deployment_id,
                replicas=desired + holding,
                instance_type=spec.resources.instance_type,
                gpu_count=spec.resources.gpu_count,
                capacity_classes=spec.autoscaling.capacity_classes,
                priority=priority,
                min_replicas=min_replicas,
                zones=(zones or {}).get(deployment_id, ()),
            )
        )
    return requests


def capacity_holders(runtimes: Iterable[DeploymentRuntime], instance_type: str, exclude: str) -> str:
    """Who holds replicas of `instance_type` (for a deployment waiting for it): "held by a (2 replicas),
    b (1 replica, failing)", or "" when nobody does."""
    held = []
    for runtime in sorted(runtimes, key=lambda r: r.id):
        spec = runtime.spec
        if runtime.id == exclude or spec is None or spec.resources.instance_type != instance_type:
            continue
        count = sum(1 for rid in runtime.placements if rid not in runtime.draining)
        if count:
            note = ", failing" if runtime.failure or runtime.consecutive_crashes else ""
            held.append(f"{runtime.id} ({count} replica{'s' if count != 1 else ''}{note})")
    return f"held by {', '.join(held)}" if held else ""


def leaving_holders(runtimes: Iterable[DeploymentRuntime], replica_id: str, inventory: Inventory) -> list[str]:
    """The replicas still on the GPUs that the placement of `replica_id` needs, if its instance is full.

    The scheduler hands over GPUs of replicas it is taking away (preempted, surplus, a disabled
    deployment's) in the same decision; those drain first, and the new replica waits for them.
    """
    runtimes = list(runtimes)
    mine = next(r.placements[replica_id] for r in runtimes if replica_id in r.placements)
    others = [
        (rid in r.awaiting_gpus, p)
        for r in runtimes
        for rid, p in r.placements.items()
        if rid != replica_id and p.instance_id == mine.instance_id
    ]
    free = inventory.free_gpus(p for _, p in others).get(mine.instance_id)
    if free is None or free >= mine.gpus:
        return []
    return sorted(p.replica_id for awaiting, p in others if not awaiting)


def free_gpu_ids(runtimes: Iterable[DeploymentRuntime], placement: Placement) -> tuple[int, ...]:
    """Device indices for a replica on a real GPU instance (`local-gpu`); virtual instances have none."""
    if placement.instance_id != LOCAL_GPU_INSTANCE:
        return ()
    taken = {
        i
        for runtime in runtimes
        for rid, ids in runtime.gpu_ids.items()
        if runtime.placements.get(rid, placement).instance_id == placement.instance_id
        for i in ids
    }
    return tuple([i for i in range(64) if i not in taken][: placement.gpus])


def placement_status(runtime: DeploymentRuntime, replica_id: str, inventory: Inventory) -> dict[str, Any]:
    """Where a replica runs, for its status: `instanceId`, and from the inventory its `instanceType` and
    `zone`; on a GPU instance type `gpuCount` and, on a real GPU instance, `gpuIds` (the device indices it
    was given). A parked replica keeps where it ran (it wakes only there); a replica still waiting for
    capacity has none of them."""
    placement = runtime.placements.get(replica_id)
    parked = runtime.parked.get(replica_id)
    if placement is not None:
        instance_id, gpus, gpu_ids = placement.instance_id, placement.gpus, runtime.gpu_ids.get(replica_id, ())
    elif parked is not None:
        instance_id, gpus, gpu_ids = parked.instance_id, parked.gpus, parked.gpu_ids
    else:
        return {}
    out: dict[str, Any] = {"instanceId": instance_id}
    instance = inventory.instance(instance_id)
    if instance is not None:
        out["instanceType"] = instance.instance_type
        out["zone"] = instance.zone
        if inventory.type_of(instance).gpu_model != CPU_GPU_MODEL:  # CPU slots are not GPUs
            out["gpuCount"] = gpus
    if gpu_ids:
        out["gpuIds"] = list(gpu_ids)
    return out
