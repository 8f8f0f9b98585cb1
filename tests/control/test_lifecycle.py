"""Pure lifecycle rules: surge-first rollouts, which replica goes first, and the state a user sees."""

from __future__ import annotations

from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control.lifecycle import DeploymentView, compute_state, plan_rollout, restart_backoff

NEW = ("v2",)
OLD = ("v1",)


def replica(rid: str, phase: ReplicaPhase, template: tuple[object, ...] = NEW, started: float = 0.0) -> ReplicaState:
    state = ReplicaState(deployment_id="d", replica_id=rid, template=template, phase=phase)
    state.phase_times[ReplicaPhase.WAITING_FOR_CAPACITY.value] = started
    return state


def test_starts_missing_replicas() -> None:
    plan = plan_rollout([replica("a", ReplicaPhase.READY)], NEW, desired=3, in_flight={})
    assert plan.start == 2 and plan.remove == ()


def test_no_start_during_backoff() -> None:
    plan = plan_rollout([], NEW, desired=1, in_flight={}, can_start=False)
    assert plan.start == 0


def test_update_keeps_old_replica_until_new_one_is_ready() -> None:
    replicas = [replica("old", ReplicaPhase.READY, OLD), replica("new", ReplicaPhase.ENGINE_LOAD)]
    assert plan_rollout(replicas, NEW, desired=1, in_flight={}).remove == ()
    replicas[1].phase = ReplicaPhase.READY
    assert plan_rollout(replicas, NEW, desired=1, in_flight={}).remove == ("old",)


def test_update_starts_new_replicas_alongside_old_ones() -> None:
    replicas = [replica("o1", ReplicaPhase.READY, OLD), replica("o2", ReplicaPhase.READY, OLD)]
    plan = plan_rollout(replicas, NEW, desired=2, in_flight={})
    assert plan.start == 2 and plan.remove == ()


def test_scale_down_removes_starting_before_ready_and_idle_before_busy() -> None:
    replicas = [
        replica("busy", ReplicaPhase.READY),
        replica("idle", ReplicaPhase.READY),
        replica("loading", ReplicaPhase.ENGINE_LOAD),
    ]
    in_flight = {"busy": 5, "idle": 0}
    assert plan_rollout(replicas, NEW, desired=2, in_flight=in_flight).remove == ("loading",)
    assert plan_rollout(replicas, NEW, desired=1, in_flight=in_flight).remove == ("loading", "idle")


def test_old_replicas_that_never_became_ready_go_at_once() -> None:
    replicas = [replica("old-loading", ReplicaPhase.DOWNLOADING_WEIGHTS, OLD)]
    assert plan_rollout(replicas, NEW, desired=1, in_flight={}).remove == ("old-loading",)


def test_backoff_doubles_and_caps() -> None:
    assert [restart_backoff(n) for n in (0, 1, 2, 3, 10)] == [0.0, 1.0, 2.0, 4.0, 60.0]


def view(**kw: object) -> DeploymentView:
    defaults: dict[str, object] = dict(
        deleting=False, disabled=False, external=False, desired=1, template=NEW, replicas=[]
    )
    defaults.update(kw)
    return DeploymentView(**defaults)  # type: ignore[arg-type]


def test_states() -> None:
    assert compute_state(view())[0] == "STATUS_CREATING"
    assert compute_state(view(replicas=[replica("a", ReplicaPhase.READY)]))[0] == "STATUS_READY"
    updating = view(replicas=[replica("a", ReplicaPhase.READY, OLD), replica("b", ReplicaPhase.ENGINE_LOAD)])
    assert compute_state(updating)[0] == "STATUS_UPDATING"
    assert compute_state(view(deleting=True))[0] == "STATUS_DELETING"
    failed, conditions = compute_state(view(failure="weights path models/x has no config.json"))
    assert failed == "STATUS_FAILED"
    assert conditions[0].message == "weights path models/x has no config.json"
    disabled, conditions = compute_state(view(disabled=True, desired=0))
    assert disabled == "STATUS_READY" and conditions[0].type == "Disabled"


def test_crash_loop_is_an_error_after_it_was_ready() -> None:
    state, conditions = compute_state(
        view(consecutive_crashes=3, crash_message="replica x crashed", ever_ready_this_generation=True)
    )
    assert state == "STATUS_ERROR"
    assert any(c.type == "ReplicaCrashed" for c in conditions)


def test_starting_replicas_show_their_phase() -> None:
    r = replica("a", ReplicaPhase.DOWNLOADING_WEIGHTS)
    r.progress = {"percent": 43.2}
    _, conditions = compute_state(view(replicas=[r]))
    assert any("downloading weights: 43%" in c.message for c in conditions)
