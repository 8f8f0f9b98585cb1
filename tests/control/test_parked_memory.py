"""Parked replicas hold host memory, bounded per instance: past the bound the least recently parked are
stopped. The pure choice, then a real controller that parks a replica and keeps the bound."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.control.test_controller_changes import Clock, Gateway
from tests.support.backends import RecordingBackend
from tests.support.waiting import wait_until_async
from tide.backends.base import ReplicaLaunch, ReplicaPhase, ReplicaState
from tide.control import parking
from tide.control.controller import Controller
from tide.control.runtime import DeploymentRuntime, ParkedAt
from tide.scheduling import Placement, local_inventory
from tide.server import catalog_from_inventory
from tide.spec import parse_deployment
from tide.store import DeploymentRecord, Store

MIB = 2**20
INVENTORY = local_inventory(None, 0, cpu_slots=4, memory_gib=1)  # a 1-GiB machine: 512 MiB for parked ones
CATALOG = catalog_from_inventory(INVENTORY, vllm_versions=())
NODE = INVENTORY.instances[0].id


def runtime(name: str) -> DeploymentRuntime:
    raw = {
        "name": name,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": 0, "max": 4, "initialScale": 0, "parking": {"enabled": True}},
    }
    record = DeploymentRecord(id=name, name=name, spec=raw, generation=1, created_at=0.0, updated_at=0.0)
    return DeploymentRuntime(id=name, record=record, spec=parse_deployment(raw, CATALOG))


def park(rt: DeploymentRuntime, rid: str, since: float, mib: int, instance: str = NODE) -> None:
    assert rt.spec is not None
    rt.replicas[rid] = ReplicaState(rt.id, rid, rt.spec.replica_template(), ReplicaPhase.PARKED)
    rt.parked[rid] = ParkedAt(instance, 0, (), since, host_bytes=mib * MIB)


def test_the_least_recently_parked_go_first_across_deployments_until_the_rest_fits() -> None:
    chat, code = runtime("chat"), runtime("code")
    park(chat, "chat-old", since=1.0, mib=300)
    park(code, "code-mid", since=2.0, mib=300)
    park(chat, "chat-new", since=3.0, mib=300)
    park(code, "code-elsewhere", since=0.5, mib=900, instance="other-node")  # no bound known there
    chosen = parking.over_host_memory([chat, code], {NODE: 500 * MIB})
    assert [rid for _, rid in chosen] == ["chat-old", "code-mid"]  # 900 -> 600 -> 300 MiB
    assert [rt.id for rt, _ in chosen] == ["chat", "code"]
    assert parking.over_host_memory([chat, code], {NODE: 900 * MIB}) == []  # exactly at the bound: kept
    assert [rid for _, rid in parking.over_host_memory([chat, code], {NODE: 0})] == ["chat-old", "code-mid", "chat-new"]


def test_a_replica_being_woken_holds_nothing_parked() -> None:
    chat = runtime("chat")
    park(chat, "chat-a", since=1.0, mib=800)
    chat.replicas["chat-a"].phase = ReplicaPhase.WAKING
    assert parking.over_host_memory([chat], {NODE: 100 * MIB}) == []


class ParkingBackend(RecordingBackend):
    """Parks every replica, holding `weights_mib` in host memory, as the built-in engine reports at level 1."""

    def __init__(self, states: dict[str, ReplicaState], weights_mib: int) -> None:
        super().__init__()
        self.states = states
        self.weights_mib = weights_mib
        self.stopped: list[str] = []

    async def park(self, replica_id: str, level: int) -> bool:
        state = self.states[replica_id]
        state.host_bytes = self.weights_mib * MIB if level == 1 else 0
        state.enter(ReplicaPhase.PARKED, "parked", 0.0)
        return True

    async def start(self, launch: ReplicaLaunch) -> ReplicaState:
        raise AssertionError("nothing starts in this test")

    async def stop(self, replica_id: str, grace_s: float) -> None:
        self.stopped.append(replica_id)


def test_the_controller_records_what_a_park_holds_and_stops_the_oldest_parked_past_the_bound(tmp_path: Path) -> None:
    chat = runtime("chat")
    park(chat, "chat-old", since=1.0, mib=300)
    assert chat.spec is not None
    ready = ReplicaState("chat", "chat-new", chat.spec.replica_template(), ReplicaPhase.READY)
    chat.replicas["chat-new"] = ready
    chat.placements["chat-new"] = Placement("chat", "chat-new", NODE, 0, 0.0)
    backend = ParkingBackend({"chat-new": ready}, weights_mib=400)
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")

    async def scenario() -> dict[str, Any]:
        ctl = Controller(store, backend, Gateway(), CATALOG, inventory=lambda: INVENTORY, clock=clock)
        ctl.runtimes["chat"] = chat
        await ctl._drain_and_park(chat, "chat-new")
        # the stop of the evicted one runs as a task of the controller
        await wait_until_async(lambda: backend.stopped, 10, "the evicted parked replica's stop")
        return {"parked": dict(chat.parked)}

    try:
        result = asyncio.run(scenario())
    finally:
        store.close()
    # 300 + 400 MiB > 512 MiB: the one parked longest ago is stopped; the new one keeps its weights' size.
    assert backend.stopped == ["chat-old"]
    assert result["parked"]["chat-new"].host_bytes == 400 * MIB
    assert "chat-old" not in result["parked"]
