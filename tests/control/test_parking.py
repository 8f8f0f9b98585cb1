"""Which parked replica wakes, where, and when one is stopped instead (pure bookkeeping)."""

from __future__ import annotations

from typing import Any

from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control import parking
from tide.control.lifecycle import DeploymentView, compute_state
from tide.control.runtime import DeploymentRuntime, ParkedAt
from tide.errors import FieldError
from tide.scheduling import Placement
from tide.spec import InstanceTypeInfo, default_catalog, parse_deployment
from tide.store import DeploymentRecord

CATALOG = default_catalog(
    builtin_version="0.1.0", instance_types=(InstanceTypeInfo("gpu-2x", "H100", 2, 80, 8, zones=("z1",)),)
)
NODE = "gpu-2x-z1-0"


def runtime(name: str, parking_spec: dict[str, Any] | None = None, **autoscaling: Any) -> DeploymentRuntime:
    raw = {
        "name": name,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "resources": {"instanceType": "gpu-2x", "gpuCount": 1},
        "autoscaling": {
            "min": 0,
            "max": 4,
            **autoscaling,
            "parking": {"enabled": True} if parking_spec is None else parking_spec,
        },
    }
    record = DeploymentRecord(id=name, name=name, spec=raw, generation=1, created_at=0.0, updated_at=0.0)
    return DeploymentRuntime(id=name, record=record, spec=parse_deployment(raw, CATALOG))


def park(rt: DeploymentRuntime, rid: str, gpu: int, since: float, template: tuple[object, ...] | None = None) -> None:
    assert rt.spec is not None
    rt.replicas[rid] = ReplicaState(rt.id, rid, template or rt.spec.replica_template(), ReplicaPhase.PARKED)
    rt.parked[rid] = ParkedAt(NODE, 1, (gpu,), since)


def run(rt: DeploymentRuntime, rid: str, gpu: int) -> None:
    assert rt.spec is not None
    rt.replicas[rid] = ReplicaState(rt.id, rid, rt.spec.replica_template(), ReplicaPhase.READY)
    rt.placements[rid] = Placement(rt.id, rid, NODE, 1, 0.0)
    rt.gpu_ids[rid] = (gpu,)


def test_the_most_recently_parked_current_replica_wakes_first() -> None:
    chat = runtime("chat")
    park(chat, "chat-old", 0, since=10.0)
    park(chat, "chat-new", 1, since=20.0)
    park(chat, "chat-stale", 1, since=30.0, template=("an older template",))
    assert parking.wake_order(chat) == ["chat-new", "chat-old"]


def test_a_parked_replica_wakes_only_into_a_slot_on_its_own_instance_of_its_size() -> None:
    at = ParkedAt(NODE, 1, (0,), 0.0)
    elsewhere = Placement("chat", "x", "gpu-2x-z1-1", 1, 0.0)
    bigger = Placement("chat", "y", NODE, 2, 0.0)
    mine = Placement("chat", "z", NODE, 1, 0.0)
    assert parking.slot_for(at, [elsewhere, bigger]) is None
    assert parking.slot_for(at, [elsewhere, bigger, mine]) is mine


def test_a_parked_replica_on_gpus_given_to_another_is_found_for_eviction() -> None:
    chat, batch = runtime("chat"), runtime("batch")
    park(chat, "chat-a", 0, since=1.0)
    park(chat, "chat-b", 1, since=2.0)
    run(batch, "batch-a", 1)
    assert parking.gpus_in_use([chat, batch], NODE) == {1}
    assert [rid for _, rid in parking.overlapping_parked([chat, batch], NODE, (1,))] == ["chat-b"]
    assert parking.overlapping_parked([chat, batch], "gpu-2x-z1-1", (0, 1)) == []


def test_parked_replicas_expire_after_the_retention_or_when_parking_is_switched_off() -> None:
    chat = runtime("chat", {"enabled": True, "retention": "60s"})
    park(chat, "chat-a", 0, since=100.0)
    park(chat, "chat-b", 1, since=150.0, template=("an older template",))
    assert parking.expired(chat, now=120.0) == ["chat-b"]  # a new template: its parked one is of no use
    assert parking.expired(chat, now=160.0) == ["chat-a", "chat-b"]
    off = runtime("quiet", {"enabled": False})
    park(off, "quiet-a", 0, since=100.0)
    assert parking.expired(off, now=100.0) == ["quiet-a"]


def test_parking_defaults_come_from_the_profile_and_bad_fields_are_named() -> None:
    assert runtime("dev1", {}, profile="development").spec.autoscaling.parks  # type: ignore[union-attr]
    assert not runtime("kna1", {}, profile="knative").spec.autoscaling.parks  # type: ignore[union-attr]
    assert not runtime("dev2", {"enabled": False}, profile="development").spec.autoscaling.parks  # type: ignore[union-attr]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"level": 3}, "autoscaling.parking.level"),
        ({"enabled": "yes"}, "autoscaling.parking.enabled"),
        ({"retention": "soon"}, "autoscaling.parking.retention"),
        ({"keep": True}, "autoscaling.parking.keep"),
    ]
    for bad, field in cases:
        try:
            runtime("bad1", bad)
        except FieldError as exc:
            assert exc.field == field, (bad, exc.field)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_a_deployment_with_only_parked_replicas_is_ready_at_zero_and_says_so() -> None:
    chat = runtime("chat")
    assert chat.spec is not None
    park(chat, "chat-a", 0, since=1.0)
    view = DeploymentView(
        deleting=False,
        disabled=False,
        external=False,
        desired=0,
        template=chat.spec.replica_template(),
        replicas=list(chat.replicas.values()),
    )
    state, conditions = compute_state(view)
    assert state == "STATUS_READY"
    assert {c.type for c in conditions} >= {"Parked", "ScaledToZero"}


def test_a_parked_replica_whose_instance_filled_up_is_displaced() -> None:
    chat = runtime("chat")
    park(chat, "chat-a", 0, since=1.0)
    assert parking.displaced(chat, {NODE: 1}) == []
    assert parking.displaced(chat, {NODE: 0}) == ["chat-a"]  # another replica holds the GPUs
    assert parking.displaced(chat, {}) == ["chat-a"]  # the instance left the inventory
