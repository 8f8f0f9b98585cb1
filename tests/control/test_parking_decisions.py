"""The controller's parking decisions, table-driven: a snapshot of a deployment's replicas in, what to
park, wake, stop or ask for out (`tide/control/parking.py`; the controller only acts on them)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.control.test_parking import NODE, park, run, runtime
from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control import parking
from tide.control.runtime import DeploymentRuntime
from tide.scheduling import Placement, local_inventory

OTHER_NODE = "gpu-2x-z1-1"


def replica(rt: DeploymentRuntime, rid: str, phase: ReplicaPhase, template: tuple[object, ...] | None = None) -> None:
    assert rt.spec is not None
    rt.replicas[rid] = ReplicaState(rt.id, rid, template or rt.spec.replica_template(), phase)


@pytest.mark.parametrize(
    ("case", "parking_spec", "phase", "expected"),
    [
        ("ready, current, parking on", None, ReplicaPhase.READY, True),
        ("parking off", {"enabled": False}, ReplicaPhase.READY, False),
        ("still starting", None, ReplicaPhase.ENGINE_LOAD, False),
        ("already draining", None, "draining", False),
        ("of an old template", None, "old", False),
        ("deployment disabled", None, "disabled", False),
        ("deployment being deleted", None, "deleting", False),
    ],
)
def test_a_scale_down_parks_only_a_ready_current_replica_of_a_parking_deployment(
    case: str, parking_spec: dict[str, Any] | None, phase: ReplicaPhase | str, expected: bool
) -> None:
    rt = runtime("chat", parking_spec)
    replica(rt, "chat-a", phase if isinstance(phase, ReplicaPhase) else ReplicaPhase.READY)
    if phase == "draining":
        rt.draining.add("chat-a")
    elif phase == "old":
        replica(rt, "chat-a", ReplicaPhase.READY, template=("an older template",))
    elif phase == "disabled":
        assert rt.spec is not None
        rt.spec = dataclasses.replace(rt.spec, disabled=True)
    elif phase == "deleting":
        rt.record = dataclasses.replace(rt.record, deleting=True)
    assert parking.may_park(rt, "chat-a") is expected, case
    assert parking.may_park(rt, "no-such-replica") is False


# Parked replicas (id, GPU, parked since), replicas of another deployment running (id, GPU), the
# instances of the slots the scheduler offers (one GPU each) -> woken (id, in order), stopped, slots left.
WAKE_CASES: list[
    tuple[str, list[tuple[str, int, float]], list[tuple[str, int]], list[str], list[str], list[str], int]
] = [
    ("two slots: both wake, newest first", [("a", 0, 1.0), ("b", 1, 2.0)], [], [NODE, NODE], ["b", "a"], [], 0),
    ("one slot: the newest wakes", [("a", 0, 1.0), ("b", 1, 2.0)], [], [NODE], ["b"], [], 0),
    ("a slot elsewhere is left for a new replica", [("a", 0, 1.0)], [], [OTHER_NODE], [], [], 1),
    ("more slots than parked: the rest start new", [("a", 0, 1.0)], [], [NODE, OTHER_NODE], ["a"], [], 1),
    (
        "its GPU went to another: stopped, the slot wakes the next",
        [("a", 0, 1.0), ("b", 1, 2.0)],
        [("x", 1)],
        [NODE],
        ["a"],
        ["b"],
        0,
    ),
    ("two parked on one GPU: the second is stopped", [("a", 0, 1.0), ("b", 0, 2.0)], [], [NODE, NODE], ["b"], ["a"], 1),
    ("no slot: nothing wakes, nothing stops", [("a", 0, 1.0)], [("x", 0)], [], [], [], 0),
]


@pytest.mark.parametrize(
    ("case", "parked", "running", "slots", "woken", "stopped", "left"), WAKE_CASES, ids=[c[0] for c in WAKE_CASES]
)
def test_parked_replicas_wake_into_slots_on_their_own_gpus_or_are_stopped(
    case: str,
    parked: list[tuple[str, int, float]],
    running: list[tuple[str, int]],
    slots: list[str],
    woken: list[str],
    stopped: list[str],
    left: int,
) -> None:
    chat, batch = runtime("chat"), runtime("batch")
    for rid, gpu, since in parked:
        park(chat, rid, gpu, since)
    for rid, gpu in running:
        run(batch, rid, gpu)
    offered = [Placement("chat", f"slot{i}", instance, 1, 0.0) for i, instance in enumerate(slots)]
    plan = parking.plan_wakes(chat, offered, [chat, batch])
    assert [rid for rid, _ in plan.wake] == woken, case
    assert all(slot.instance_id == NODE for _, slot in plan.wake)
    assert list(plan.stop) == stopped, case
    assert len(plan.remaining) == left, case
    assert set(plan.remaining) | {slot for _, slot in plan.wake} <= set(offered)
    assert chat.parked.keys() == {rid for rid, _, _ in parked}  # a plan changes nothing


def test_a_deployment_with_nothing_parked_plans_no_wakes_without_walking_the_others() -> None:
    # Asked for every deployment the controller places: at 10,000 deployments a walk over all of them
    # each time made the controller's catch-up after a seed of creates quadratic.
    def untouchable() -> Any:
        raise AssertionError("plan_wakes walked every deployment for one with nothing parked")
        yield

    chat = runtime("chat")
    offered = [Placement("chat", "slot0", NODE, 1, 0.0)]
    plan = parking.plan_wakes(chat, offered, untouchable())
    assert plan.wake == () and plan.stop == () and list(plan.remaining) == offered


# now, the policy's keep (None: it said nothing), GPUs free on the node -> (replica, why) stopped.
STOP_CASES: list[tuple[str, float, int | None, int, list[tuple[str, str]]]] = [
    ("within the retention, room on the node: kept", 120.0, None, 2, []),
    ("past the retention", 165.0, None, 2, [("chat-a", "retention")]),
    ("the policy keeps one: the older goes", 120.0, 1, 2, [("chat-a", "keeps 1")]),
    ("the policy keeps none: newest listed first", 120.0, 0, 2, [("chat-b", "keeps 0"), ("chat-a", "keeps 0")]),
    (
        "expired and beyond keep: stopped once, as expired",
        165.0,
        0,
        2,
        [("chat-a", "retention"), ("chat-b", "keeps 0")],
    ),
    ("the node's GPUs were given away", 120.0, None, 0, [("chat-a", "GPUs"), ("chat-b", "GPUs")]),
]


@pytest.mark.parametrize(("case", "now", "keep", "free", "expected"), STOP_CASES, ids=[c[0] for c in STOP_CASES])
def test_parked_replicas_are_stopped_past_retention_beyond_keep_or_displaced(
    case: str, now: float, keep: int | None, free: int, expected: list[tuple[str, str]]
) -> None:
    chat = runtime("chat", {"enabled": True, "retention": "60s"})
    park(chat, "chat-a", 0, since=100.0)
    park(chat, "chat-b", 1, since=110.0)
    stops = parking.retention_stops(chat, now, keep, {NODE: free})
    assert [rid for rid, _ in stops] == [rid for rid, _ in expected], case
    for (_, why), (_, words) in zip(stops, expected, strict=True):
        assert words in why, (case, why)


# replicas (phases), parked count, what the autoscaler asked, requests queued -> the count to ask for.
QUEUE_CASES: list[tuple[str, list[ReplicaPhase], int, int, int, int]] = [
    ("nothing queued: the autoscaler's count", [ReplicaPhase.READY], 3, 1, 0, 1),
    ("3 queued at concurrency 2: two wake", [ReplicaPhase.READY], 3, 1, 3, 3),
    ("one already starting has room for 2 of them", [ReplicaPhase.READY, ReplicaPhase.ENGINE_LOAD], 3, 2, 3, 3),
    ("a waking one counts as coming too", [ReplicaPhase.READY, ReplicaPhase.WAKING], 3, 2, 4, 3),
    ("many queued: at most the parked ones wake, within max", [ReplicaPhase.READY], 3, 1, 20, 4),
    ("fewer parked than needed: those wake", [ReplicaPhase.READY], 1, 1, 20, 2),
    ("the autoscaler already asks for more", [ReplicaPhase.READY], 3, 4, 1, 4),
]


@pytest.mark.parametrize(
    ("case", "phases", "parked", "desired", "queued", "expected"), QUEUE_CASES, ids=[c[0] for c in QUEUE_CASES]
)
def test_requests_queued_behind_busy_replicas_wake_enough_parked_ones(
    case: str, phases: list[ReplicaPhase], parked: int, desired: int, queued: int, expected: int
) -> None:
    chat = runtime("chat", concurrency=2, max=4)
    for i, phase in enumerate(phases):
        replica(chat, f"chat-r{i}", phase)
    for i in range(parked):
        park(chat, f"chat-p{i}", i % 2, since=float(i))
    assert parking.queue_wake_target(chat, desired, queued) == expected, case


def test_parked_memory_is_bounded_per_instance_that_says_its_memory() -> None:
    sized = local_inventory(None, 0, cpu_slots=4, memory_gib=8)
    assert parking.memory_limits(sized, 0.25) == {sized.instances[0].id: 2 * 2**30}
    unsized = local_inventory(None, 0, cpu_slots=4, memory_gib=0)
    assert parking.memory_limits(unsized, 0.25) == {}


def test_a_parked_replica_remembers_where_it_ran_and_since_when() -> None:
    at = parking.parked_at(Placement("chat", "chat-a", NODE, 1, 0.0), (1,), 5 * 2**20, now=42.0)
    assert (at.instance_id, at.gpus, at.gpu_ids, at.since, at.host_bytes) == (NODE, 1, (1,), 42.0, 5 * 2**20)
    assert parking.parked_at(None, (), 0, now=1.0).instance_id == ""
