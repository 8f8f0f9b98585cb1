"""The controller's placement bookkeeping: what it asks the scheduler, and when a placed replica may start."""

from __future__ import annotations

from typing import Any

from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control.placement import (
    capacity_holders,
    leaving_holders,
    placement_status,
    scheduled_placements,
    scheduling_requests,
)
from tide.control.runtime import DeploymentRuntime, ParkedAt
from tide.scheduling import Placement, declared_inventory, local_inventory, schedule
from tide.spec import InstanceTypeInfo, default_catalog, parse_deployment
from tide.store import DeploymentRecord

CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("gpu-2x", "H100", 2, 80, 8, zones=("z1",)),)
)
INVENTORY = declared_inventory(
    {
        "instanceTypes": [{"id": "gpu-2x", "gpuModel": "H100", "gpus": 2, "memoryGib": 80}],
        "instances": [{"type": "gpu-2x", "zone": "z1", "count": 1}],
    }
)
INSTANCE = INVENTORY.instances[0].id


def runtime(name: str, **spec: Any) -> DeploymentRuntime:
    raw = {
        "name": name,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "resources": {"instanceType": "gpu-2x", "gpuCount": 1},
        "autoscaling": {"min": 0, "max": 4},
        **spec,
    }
    record = DeploymentRecord(id=name, name=name, spec=raw, generation=1, created_at=0.0, updated_at=0.0)
    return DeploymentRuntime(id=name, record=record, spec=parse_deployment(raw, CATALOG))


def place(rt: DeploymentRuntime, replica_id: str, *, template: tuple[object, ...] | None = None) -> None:
    assert rt.spec is not None
    rt.replicas[replica_id] = ReplicaState(
        rt.id, replica_id, template if template is not None else rt.spec.replica_template(), ReplicaPhase.READY
    )
    rt.placements[replica_id] = Placement(rt.id, replica_id, INSTANCE, 1, 0.0)


def test_draining_replicas_are_not_weighed_nor_counted() -> None:
    batch = runtime("batch")
    place(batch, "batch-a")
    place(batch, "batch-b")
    batch.draining.add("batch-b")  # preempted: on its way out
    assert [p.replica_id for p in scheduled_placements([batch])] == ["batch-a"]
    (request,) = scheduling_requests({"batch": batch}, {"batch": 2})
    assert request.replicas == 2  # not 3: the leaving replica is not a phantom third


def test_old_template_replicas_keep_their_gpus_during_a_rollout() -> None:
    chat = runtime("chat")
    place(chat, "chat-old", template=("an older template",))
    place(chat, "chat-new")
    (request,) = scheduling_requests({"chat": chat}, {"chat": 1})
    assert request.replicas == 2


def test_a_replica_waits_for_the_leaving_one_whose_gpus_it_was_given() -> None:
    batch, chat = runtime("batch"), runtime("chat")
    place(batch, "batch-a")
    place(batch, "batch-b")
    batch.draining.add("batch-b")
    chat.placements["chat-new"] = Placement("chat", "chat-new", INSTANCE, 1, 1.0)
    # The instance has 2 GPUs: batch-a and the draining batch-b still hold both.
    assert leaving_holders([batch, chat], "chat-new", INVENTORY) == ["batch-a", "batch-b"]
    del batch.placements["batch-b"]  # batch-b stopped
    assert leaving_holders([batch, chat], "chat-new", INVENTORY) == []


def test_two_waiting_replicas_do_not_wait_for_each_other() -> None:
    batch, chat = runtime("batch"), runtime("chat")
    place(batch, "batch-old")
    batch.placements["batch-old"] = Placement("batch", "batch-old", INSTANCE, 2, 0.0)
    batch.draining.add("batch-old")
    for rid in ("chat-1", "chat-2"):
        chat.placements[rid] = Placement("chat", rid, INSTANCE, 1, 1.0)
        chat.awaiting_gpus.add(rid)
    assert leaving_holders([batch, chat], "chat-1", INVENTORY) == ["batch-old"]
    del batch.placements["batch-old"]
    assert leaving_holders([batch, chat], "chat-1", INVENTORY) == []
    assert leaving_holders([batch, chat], "chat-2", INVENTORY) == []


def test_a_failing_deployment_gives_its_capacity_to_a_healthy_one() -> None:
    from tide.scheduling import schedule

    broken = runtime("broken", autoscaling={"min": 2, "max": 2, "priority": 500})
    broken.failure = "weights path models/missing does not exist"
    broken.consecutive_crashes = 3
    broken.next_start_at = 100.0  # backing off before its next try
    healthy = runtime("healthy", autoscaling={"min": 1, "max": 1})
    runtimes = {"broken": broken, "healthy": healthy}
    during_backoff = schedule(INVENTORY, [], scheduling_requests(runtimes, {"broken": 2, "healthy": 1}, 10.0), 10.0)
    assert [p.deployment_id for p in during_backoff.started] == ["healthy"]
    # Out of back-off it may try again, but only on what is left: never ahead of a healthy deployment.
    (request, _) = scheduling_requests(runtimes, {"broken": 2, "healthy": 1}, 200.0)
    assert request.priority == 0 and request.min_replicas == 0


def test_a_deployment_waiting_for_capacity_is_told_who_holds_it() -> None:
    broken, batch, chat = runtime("broken"), runtime("batch"), runtime("chat")
    place(batch, "batch-a")
    place(broken, "broken-a")
    broken.consecutive_crashes = 2
    assert capacity_holders([broken, batch, chat], "gpu-2x", exclude="chat") == (
        "held by batch (1 replica), broken (1 replica, failing)"
    )


def test_a_replica_status_says_where_it_runs_and_a_parked_one_where_it_ran() -> None:
    chat = runtime("chat")
    place(chat, "chat-a")
    chat.gpu_ids["chat-a"] = (1,)
    assert placement_status(chat, "chat-a", INVENTORY) == {
        "instanceId": INSTANCE,
        "instanceType": "gpu-2x",
        "zone": "z1",
        "gpuCount": 1,
        "gpuIds": [1],
    }
    chat.parked["chat-p"] = ParkedAt(INSTANCE, 1, (0,), since=5.0)  # parked: no placement in the books
    assert placement_status(chat, "chat-p", INVENTORY) == {
        "instanceId": INSTANCE,
        "instanceType": "gpu-2x",
        "zone": "z1",
        "gpuCount": 1,
        "gpuIds": [0],
    }
    assert placement_status(chat, "chat-waiting", INVENTORY) == {}  # still waiting for capacity
    laptop = local_inventory(None, 0)
    chat.placements["chat-cpu"] = Placement(chat.id, "chat-cpu", laptop.instances[0].id, 1, 0.0)
    assert placement_status(chat, "chat-cpu", laptop) == {  # CPU slots are not GPUs
        "instanceId": "local-cpu",
        "instanceType": "cpu-local",
        "zone": laptop.instances[0].zone,
    }


def test_replicas_run_only_in_the_zones_their_gateways_allow() -> None:
    """Without gateway zones the scheduler tries zones alphabetically (z1 first); a deployment whose
    gateways allow only z2 lands in z2, and one whose type z2 does not offer waits with a reason."""
    two_zones = declared_inventory(
        {
            "instanceTypes": [{"id": "gpu-2x", "gpuModel": "H100", "gpus": 2, "memoryGib": 80}],
            "instances": [{"type": "gpu-2x", "zone": "z1", "count": 1}, {"type": "gpu-2x", "zone": "z2", "count": 1}],
        }
    )
    zone_of = {i.id: i.zone for i in two_zones.instances}
    free, fenced = runtime("free"), runtime("fenced")
    wants = {"free": 1, "fenced": 1}
    requests = scheduling_requests({"free": free, "fenced": fenced}, wants, zones={"fenced": ("z2",)})
    result = schedule(two_zones, [], requests, 0.0)
    placed = {p.deployment_id: zone_of[p.instance_id] for p in result.started}
    assert placed == {"free": "z1", "fenced": "z2"}
    nowhere = scheduling_requests({"fenced": fenced}, {"fenced": 1}, zones={"fenced": ("z3",)})
    waiting = schedule(two_zones, [], nowhere, 0.0)
    assert not waiting.started and "z3" in " ".join(str(p) for p in waiting.pending)
