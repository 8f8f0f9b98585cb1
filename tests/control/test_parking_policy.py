"""The live controller gives the autoscaling policy the same parking context as `tide sim` and applies
the policy's answer: which parked replicas it keeps. A real controller over a real SQLite store with a
recording backend; the parked replicas are put in place by hand (parking itself is tested in
tests/e2e/test_parking.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.control.test_controller_changes import INVENTORY, Clock, Gateway, controller, tick
from tests.support.backends import RecordingBackend
from tide.autoscale.policy import PARKED_COST, Parking
from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control import parking
from tide.control.controller import Controller
from tide.control.runtime import DeploymentRuntime, ParkedAt
from tide.scheduling import Placement
from tide.store import Store


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    yield s
    s.close()


def spec(name: str, **autoscaling: Any) -> dict[str, Any]:
    return {
        "name": name,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": 0, "max": 4, "initialScale": 0, **autoscaling},
    }


def park(runtime: DeploymentRuntime, replica_id: str, since: float) -> None:
    assert runtime.spec is not None
    state = ReplicaState(runtime.id, replica_id, runtime.spec.replica_template(), ReplicaPhase.PARKED)
    state.phase_times.update({"waking": since - 50.0, "ready": since - 49.5})  # it woke once, in 0.5 s
    runtime.replicas[replica_id] = state
    runtime.parked[replica_id] = ParkedAt("local-0", 0, (), since)


def deployment(store: Store, clock: Clock, name: str, **autoscaling: Any) -> tuple[Controller, RecordingBackend]:
    backend = RecordingBackend()
    ctl = controller(store, Gateway(), clock, backend)
    store.create_deployment(name, spec(name, **autoscaling), clock.now)
    tick(ctl, clock)
    return ctl, backend


@pytest.mark.parametrize(
    ("autoscaling", "expected"),
    [
        # The tide profile parks by default, with its own retention default (the bound its policy plans within).
        ({"profile": "tide"}, Parking(2, 0.5, 7200.0, PARKED_COST, (0.0, 0.0))),
        ({"profile": "knative", "parking": {"enabled": True, "retention": "5m"}}, Parking(2, 0.5, 300.0)),
        ({"profile": "knative"}, None),  # the hosted profiles do not park: a scale-down stops
    ],
)
def test_the_policy_sees_the_parked_replicas_as_in_the_simulator(
    store: Store, autoscaling: dict[str, Any], expected: Parking | None
) -> None:
    clock = Clock()
    ctl, _ = deployment(store, clock, "chat", **autoscaling)
    runtime = ctl.runtimes["chat"]
    park(runtime, "chat-b", clock.now - 100.0)
    park(runtime, "chat-a", clock.now - 700.0)
    seen = parking.context(runtime)
    if expected is None:
        assert seen is None
        return
    assert seen is not None
    # Oldest first, as the simulator lists them; the wake time is the one measured.
    assert seen._replace(since=()) == expected._replace(since=())
    assert seen.since == (clock.now - 700.0, clock.now - 100.0)


def test_the_tide_policy_stops_a_parked_replica_it_no_longer_keeps_live(store: Store) -> None:
    """Two parked replicas, one parked 700 s ago (a burst's: kept 600 s) and one 100 s ago; the tide
    profile's retention (2 h) would keep both. The policy keeps one, and the controller stops the other."""
    clock = Clock()
    ctl, _ = deployment(store, clock, "chat", profile="tide")
    runtime = ctl.runtimes["chat"]
    park(runtime, "chat-new", clock.now - 100.0)
    park(runtime, "chat-old", clock.now - 700.0)
    for _ in range(2):  # at least one decision tick
        tick(ctl, clock, 2.0)
    leaving = runtime.draining | (set(runtime.parked) ^ {"chat-new", "chat-old"})
    assert leaving == {"chat-old"}, (leaving, runtime.parked)
    assert "chat-new" in runtime.parked
    reason = store.get_deployment("chat").status["lastScalingDecision"]["reason"]
    assert "keeping 1 of the parked" in reason, reason


def test_a_request_at_zero_is_decided_with_the_parking_context_too(store: Store) -> None:
    clock = Clock()
    ctl, _ = deployment(store, clock, "chat", profile="tide", concurrency=1)
    runtime = ctl.runtimes["chat"]
    park(runtime, "chat-a", clock.now - 100.0)
    ctl.on_demand("chat")  # the gateway: a request for a deployment with no ready replica
    assert runtime.scaler is not None and runtime.scaler.last is not None
    assert "of the parked" in runtime.scaler.last.reason, runtime.scaler.last.reason


class WakeRecorder(RecordingBackend):
    def __init__(self) -> None:
        super().__init__()
        self.woken: list[str] = []

    async def wake(self, replica_id: str) -> bool:
        self.woken.append(replica_id)
        return True


def test_a_request_queued_behind_busy_replicas_wakes_a_parked_one_at_once(store: Store) -> None:
    """As `tide sim` does (`Policy.wakes_for_queue`): the gateway says a request waits behind the busy
    replica, and the next reconcile wakes the parked one instead of waiting for the load average."""
    clock = Clock()
    backend = WakeRecorder()
    ctl = controller(store, Gateway(), clock, backend)
    store.create_deployment("chat", spec("chat", profile="tide", concurrency=2), clock.now)
    tick(ctl, clock)
    runtime = ctl.runtimes["chat"]
    assert runtime.spec is not None
    busy = ReplicaState("chat", "chat-busy", runtime.spec.replica_template(), ReplicaPhase.READY)
    runtime.replicas["chat-busy"] = busy
    instance = INVENTORY.instances[0].id
    runtime.placements["chat-busy"] = Placement("chat", "chat-busy", instance, runtime.spec.resources.gpu_count, 0.0)
    assert runtime.scaler is not None
    runtime.scaler.wake(clock.now, 0)  # the request at zero that this busy replica was started for
    assert runtime.scaler.current == 1
    park(runtime, "chat-parked", clock.now - 30.0)
    runtime.parked["chat-parked"] = ParkedAt(instance, runtime.spec.resources.gpu_count, (), clock.now - 30.0)

    tick(ctl, clock)  # no request waits: the parked replica stays parked
    assert backend.woken == [] and "chat-parked" in runtime.parked
    ctl.on_demand("chat")  # the gateway: a request queued behind the busy replica
    tick(ctl, clock, 0.1)
    assert backend.woken == ["chat-parked"], (backend.woken, runtime.parked, backend.started)
    assert backend.started == []  # woken, not a cold start


def test_a_policy_that_does_not_wake_for_the_queue_leaves_the_parked_replica_to_its_ticks(store: Store) -> None:
    clock = Clock()
    ctl, _ = deployment(store, clock, "chat", profile="knative", concurrency=1, parking={"enabled": True})
    runtime = ctl.runtimes["chat"]
    assert runtime.spec is not None
    park(runtime, "chat-a", clock.now - 30.0)
    runtime.replicas["chat-b"] = ReplicaState("chat", "chat-b", runtime.spec.replica_template(), ReplicaPhase.READY)
    ctl.on_demand("chat")
    assert runtime.queued_arrivals == 0
