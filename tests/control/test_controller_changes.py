"""The reconcile loop works in proportion to what changed: the store's change feed, deployments at rest
skipped, routes pushed only on change. A real controller over a real SQLite store; the backend and the
gateway are recorders (every deployment here has min 0 and initialScale 0: nothing starts unasked)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import tide.control.controller
import tide.store.database
from tests.support.backends import RecordingBackend
from tests.support.waiting import wait_until_async
from tide.control.controller import WAKE_GAP_FACTOR, WAKE_GAP_MAX_S, WEIGHTS_CHECKS_AT_ONCE, Controller, wake_gap
from tide.control.routing import gateway_routes, specs_of
from tide.gateway.routes import RouteTable
from tide.scheduling import local_inventory
from tide.server import catalog_from_inventory
from tide.store import Store

INVENTORY = local_inventory(None, 0, cpu_slots=4)
CATALOG = catalog_from_inventory(INVENTORY, vllm_versions=())


class Gateway:
    def __init__(self) -> None:
        self.tables: list[RouteTable] = []

    def set_routes(self, table: RouteTable) -> None:
        self.tables.append(table)

    def in_flight(self, replica_id: str) -> int:
        return 0

    def load_snapshot(self) -> Mapping[str, Any]:
        return {}

    def endpoints(self, model: str) -> list[str]:
        return [e.base_url for route in self.tables[-1].routes.get(model, ()) for e in route.replicas]


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_000_000.0

    def __call__(self) -> float:
        return self.now


def idle(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": 0, "max": 1, "initialScale": 0},
    }


def external(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "runtime": {"engine": "external", "endpoints": [url]}}


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    yield s
    s.close()


def controller(store: Store, gateway: Gateway, clock: Clock, backend: RecordingBackend | None = None) -> Controller:
    return Controller(store, backend or RecordingBackend(), gateway, CATALOG, inventory=lambda: INVENTORY, clock=clock)


def tick(ctl: Controller, clock: Clock, seconds: float = 1.0) -> None:
    clock.now += seconds
    ctl.sample_load()
    asyncio.run(ctl.reconcile())


class StoreWork:
    """SQL statements run, deployment rows decoded and status writes made while counting."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements = self.decoded = self.status_writes = 0
        real_record, real_set_statuses = tide.store.database._record, store.set_statuses

        def count_record(row: Any) -> Any:
            self.decoded += 1
            return real_record(row)

        def count_set_statuses(statuses: Mapping[str, dict[str, Any]]) -> None:
            self.status_writes += len(statuses)
            real_set_statuses(statuses)

        def count_statement(*_args: Any) -> None:
            self.statements += 1

        monkeypatch.setattr(tide.store.database, "_record", count_record)
        monkeypatch.setattr(store, "set_statuses", count_set_statuses)
        event.listen(store.engine, "before_cursor_execute", count_statement)

    def reset(self) -> tuple[int, int, int]:
        seen = (self.statements, self.decoded, self.status_writes)
        self.statements = self.decoded = self.status_writes = 0
        return seen


def test_an_idle_control_plane_reads_and_writes_nothing_per_deployment(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, gateway = Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    work = StoreWork(store, monkeypatch)

    def idle_cost(count: int, start: int) -> tuple[int, int, int]:
        for i in range(start, start + count):
            store.create_deployment(f"d{i:03d}", idle(f"d{i:03d}"), clock.now)
        for _ in range(4):  # pick them up, let every autoscaler decide once and their status settle
            tick(ctl, clock, 2.0)
        pushes = len(gateway.tables)
        work.reset()
        for _ in range(5):
            tick(ctl, clock, 1.0)
        assert len(gateway.tables) == pushes, "an unchanged route table is not pushed again"
        return work.reset()

    small = idle_cost(5, 0)
    large = idle_cost(95, 5)
    assert small == large  # the same store work for 5 idle seconds at 5 and at 100 deployments
    statements, decoded, status_writes = large
    assert statements <= 5 * 2, statements  # a tick: BEGIN and one read of the change counter
    assert decoded == 0 and status_writes == 0


def test_a_write_from_another_process_is_acted_on_without_a_wake_up(tmp_path: Path, store: Store) -> None:
    clock, gateway = Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    tick(ctl, clock)
    other = Store(store.url)  # the API of another process: no wake() reaches this controller
    try:
        other.create_deployment("chat", external("chat", "http://127.0.0.1:9001/v1"), clock.now)
        tick(ctl, clock)
        assert gateway.endpoints("chat") == ["http://127.0.0.1:9001/v1"]
        other.update_spec("chat", external("chat", "http://127.0.0.1:9002/v1"), clock.now)
        tick(ctl, clock)
        assert gateway.endpoints("chat") == ["http://127.0.0.1:9002/v1"]
        assert store.get_deployment("chat").status["observedGeneration"] == 2
        other.mark_deleting("chat", clock.now)
        tick(ctl, clock)
        assert "chat" not in gateway.tables[-1].routes
        tick(ctl, clock)
        assert other.list_deployments() == []  # nothing to drain: the controller removed the record
    finally:
        other.close()


def test_a_missed_change_is_picked_up_by_the_periodic_resync(store: Store) -> None:
    clock, gateway = Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    store.create_deployment("chat", external("chat", "http://127.0.0.1:9001/v1"), clock.now)
    tick(ctl, clock)
    with store.engine.begin() as conn:  # an edit that bypasses the feed (by hand, or an older version)
        conn.execute(
            tide.store.database.deployments.update().values(
                spec=external("chat", "http://127.0.0.1:9003/v1"), generation=2
            )
        )
    tick(ctl, clock)
    assert gateway.endpoints("chat") == ["http://127.0.0.1:9001/v1"]
    tick(ctl, clock, ctl.watch.resync_interval_s)
    assert gateway.endpoints("chat") == ["http://127.0.0.1:9003/v1"]


def test_a_deployment_at_rest_still_wakes_on_demand(store: Store) -> None:
    clock, gateway, backend = Clock(), Gateway(), RecordingBackend()
    ctl = controller(store, gateway, clock, backend)
    store.create_deployment("cold", idle("cold"), clock.now)
    for _ in range(3):
        tick(ctl, clock, 2.0)
    assert store.get_deployment("cold").status["desiredReplicas"] == 0 and backend.started == []
    ctl.on_demand("cold")  # a request arrived for it
    asyncio.run(ctl.reconcile())
    assert backend.started == ["cold"]
    assert store.get_deployment("cold").status["desiredReplicas"] == 1


def test_between_ticks_only_the_changed_deployment_is_reconciled(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, gateway = Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    store.create_deployment("chat", external("chat", "http://127.0.0.1:9001/v1"), clock.now)
    for i in range(20):
        store.create_deployment(f"idle{i}", idle(f"idle{i}"), clock.now)
    for _ in range(3):
        tick(ctl, clock, 2.0)
    looked_at: list[str] = []
    real_wanted = ctl._wanted

    def wanted(runtime: Any, now: float) -> int:
        looked_at.append(runtime.id)
        return real_wanted(runtime, now)

    monkeypatch.setattr(ctl, "_wanted", wanted)
    store.update_spec("chat", external("chat", "http://127.0.0.1:9002/v1"), clock.now)
    asyncio.run(ctl.reconcile(full=False))  # what a wake-up between ticks runs
    assert gateway.endpoints("chat") == ["http://127.0.0.1:9002/v1"]
    assert looked_at == ["chat"]
    asyncio.run(ctl.reconcile(full=True))  # the tick gives every autoscaler its turn but the resting ones'
    assert set(looked_at) == {"chat"}
    assert {f"idle{i}" for i in range(20)} <= ctl._resting


def test_a_create_between_ticks_walks_no_other_deployment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A create at zero wakes the controller: its reconcile must not visit every other deployment's
    placements (for a scheduling round nobody asked for) or re-sort every route, or each create at 10,000
    deployments pays for all of them."""
    clock, gateway = Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    visited = {"placements": 0, "order": 0}
    real_order = ctl._creation_order

    def scheduled_placements(runtimes: Any) -> list[Any]:
        runtimes = list(runtimes)
        visited["placements"] += len(runtimes)
        return real_placements(runtimes)

    def order(deployment_id: str) -> tuple[float, str]:
        visited["order"] += 1
        return real_order(deployment_id)

    real_placements = tide.control.controller.scheduled_placements
    monkeypatch.setattr(tide.control.controller, "scheduled_placements", scheduled_placements)
    monkeypatch.setattr(ctl, "_creation_order", order)

    def cost_of_a_create(existing: int, start: int) -> dict[str, int]:
        for i in range(start, start + existing):
            store.create_deployment(f"d{i:03d}", idle(f"d{i:03d}"), clock.now)
        for _ in range(3):
            tick(ctl, clock, 2.0)
        visited.update(placements=0, order=0)
        store.create_deployment(f"new{start}", idle(f"new{start}"), clock.now)
        asyncio.run(ctl.reconcile(full=False))  # what the create's wake-up runs
        assert f"new{start}" in gateway.tables[-1].routes, "the new deployment is routed at once"
        return dict(visited)

    assert cost_of_a_create(10, 0) == cost_of_a_create(290, 10) == {"placements": 0, "order": 1}


@pytest.fixture(params=["sqlite", "postgres"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tide.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    s = Store(url)
    yield s
    s.close()


def test_a_reconcile_writes_the_first_statuses_of_many_new_deployments_in_one_commit(either_store: Store) -> None:
    """Creates can land faster than the controller takes them (a 10,000-create seed, an import): its
    catch-up writes every new deployment's first status. One commit per deployment made the API's gets and
    creates wait behind thousands of them; one statement and one commit for all is what a user's request
    then waits behind, however many deployments the reconcile took."""
    store, clock, gateway = either_store, Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    tick(ctl, clock)  # the controller is up; then the creates land
    commits = updates = 0

    def count_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    def count_update(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal updates
        updates += statement.lstrip().upper().startswith("UPDATE DEPLOYMENTS")

    def first_status_writes(count: int, start: int) -> tuple[int, int]:
        nonlocal commits, updates
        ids = [f"d{i:03d}" for i in range(start, start + count)]
        for deployment_id in ids:
            store.create_deployment(deployment_id, idle(deployment_id), clock.now)
        commits = updates = 0
        event.listen(store.engine, "commit", count_commit)
        event.listen(store.engine, "before_cursor_execute", count_update)
        try:
            asyncio.run(ctl.reconcile(full=False))  # what the creates' wake-up runs
        finally:
            event.remove(store.engine, "commit", count_commit)
            event.remove(store.engine, "before_cursor_execute", count_update)
        statuses = {r.id: r.status for r in store.get_deployments(ids)}
        assert all(statuses[d]["state"] == "STATUS_READY" for d in ids), statuses  # the controller's, not the create's
        assert all(statuses[d]["observedGeneration"] == 1 for d in ids)
        return commits, updates

    assert first_status_writes(3, 0) == first_status_writes(200, 3) == (1, 1)


def test_a_burst_of_creates_checks_weights_two_at_a_time(store: Store) -> None:
    """Each create at zero looks at its weights in the background, on the thread pool the API's reads use
    too: ten thousand creates must not queue ten thousand listings ahead of a user's GET."""
    clock, gateway = Clock(), Gateway()
    running, peak, checked = 0, 0, []

    async def check(spec: Any) -> str | None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.to_thread(lambda: None)  # a listing: a hop to a worker thread, as the real check makes
        running -= 1
        checked.append(spec.name)
        return None

    ctl = Controller(
        store, RecordingBackend(), gateway, CATALOG, inventory=lambda: INVENTORY, clock=clock, check_weights=check
    )
    for i in range(20):
        store.create_deployment(f"dep{i:02d}", idle(f"dep{i:02d}"), clock.now)

    async def scenario() -> None:
        await ctl.reconcile()
        await wait_until_async(lambda: len(checked) == 20, 10.0, "every deployment's weights checked")

    asyncio.run(scenario())
    assert peak == WEIGHTS_CHECKS_AT_ONCE == 2


class Load:
    """A gateway's load report for one deployment (what sample_load reads of it)."""

    def __init__(self, average: float, requests_total: int = 0) -> None:
        self.average, self.queued_avg, self.requests_total = average, 0.0, requests_total


def test_idle_deployments_rest_and_load_or_a_change_wakes_them(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, backend = Clock(), RecordingBackend()
    gateway = Gateway()
    loads: dict[str, Load] = {}
    monkeypatch.setattr(gateway, "load_snapshot", lambda: loads)
    ctl = controller(store, gateway, clock, backend)
    for i in range(50):
        store.create_deployment(f"dep{i}", idle(f"dep{i}"), clock.now)
    for _ in range(4):
        tick(ctl, clock, 2.0)
    assert len(ctl._resting) == 50
    decided: list[str] = []
    real_desired = ctl._desired

    def desired(runtime: Any, now: float) -> int:
        decided.append(runtime.id)
        return real_desired(runtime, now)

    monkeypatch.setattr(ctl, "_desired", desired)
    for _ in range(10):
        tick(ctl, clock, 1.0)
    assert decided == []  # ten idle seconds: no autoscaler of 50 at rest was ticked

    ctl.on_demand("dep7")  # requests at zero: the gateway calls on_demand for each, then reports their load
    loads["dep7"] = Load(20.0)
    for _ in range(3):
        tick(ctl, clock, 1.0)
    assert backend.started == ["dep7"] and "dep7" not in ctl._resting

    spec = idle("dep3") | {"autoscaling": {"min": 1, "max": 1, "initialScale": 1}}
    store.update_spec("dep3", spec, clock.now)  # a change to a resting deployment
    tick(ctl, clock, 1.0)
    assert backend.started == ["dep7", "dep3"]
    assert set(decided) == {"dep7", "dep3"}


def test_a_change_rebuilds_only_its_model_names_gateway_view_as_a_full_rebuild_would(store: Store) -> None:
    from tide.store.gateways import GatewayStore

    clock, gateway = Clock(), Gateway()
    GatewayStore(store.engine).create_gateway(
        "other", {"name": "other", "apiKeyAuth": {}, "bodyBasedRouting": {}}, clock.now
    )
    ctl = controller(store, gateway, clock)
    for i in range(6):
        store.create_deployment(f"chat{i}", external(f"chat{i}", f"http://127.0.0.1:900{i}/v1"), clock.now)
    tick(ctl, clock)

    def pushed_view_is_full_view() -> None:
        table = gateway.tables[-1]
        assert {g.gateway_id: dict(g.models) for g in table.gateways} == {
            g.gateway_id: dict(g.models)
            for g in gateway_routes(ctl._gateways, specs_of(ctl.runtimes.values()), table.routes)
        }

    pushed_view_is_full_view()
    before = {g.gateway_id: g.models for g in gateway.tables[-1].gateways}
    store.update_spec("chat1", external("chat1", "http://127.0.0.1:9101/v1"), clock.now)  # a PATCH
    asyncio.run(ctl.reconcile(full=False))
    pushed_view_is_full_view()
    after = {g.gateway_id: g.models for g in gateway.tables[-1].gateways}
    assert after["default"]["chat2"] is before["default"]["chat2"]  # untouched names keep their tuples
    moved = external("chat2", "http://127.0.0.1:9002/v1") | {"gatewayIds": ["other"]}
    store.update_spec("chat2", moved, clock.now)  # to another gateway: the route itself is unchanged
    asyncio.run(ctl.reconcile(full=False))
    pushed_view_is_full_view()
    assert {g.gateway_id: "chat2" in g.models for g in gateway.tables[-1].gateways} == {"default": False, "other": True}
    store.mark_deleting("chat3", clock.now)
    tick(ctl, clock)
    tick(ctl, clock)
    pushed_view_is_full_view()
    assert "chat3" not in gateway.tables[-1].routes


def test_a_resync_decodes_only_what_changed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, gateway = Clock(), Gateway()
    ctl = controller(store, gateway, clock)
    for i in range(30):
        store.create_deployment(f"dep{i}", idle(f"dep{i}"), clock.now)
    for _ in range(3):
        tick(ctl, clock, 2.0)
    tick(ctl, clock, ctl.watch.resync_interval_s)  # the first resync after the feed's reads: reads those once
    work = StoreWork(store, monkeypatch)
    tick(ctl, clock, ctl.watch.resync_interval_s)
    assert work.reset()[1] == 0  # nothing changed: not one deployment decoded
    with store.engine.begin() as conn:  # removed by hand, around the feed
        conn.execute(tide.store.database.deployments.delete().where(tide.store.database.deployments.c.id == "dep4"))
    tick(ctl, clock, ctl.watch.resync_interval_s)
    assert "dep4" not in ctl.runtimes and len(ctl.runtimes) == 29
    assert work.reset()[1] == 0


def test_a_wake_after_a_quiet_spell_averages_only_the_seconds_with_data_as_the_simulator_does(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At zero with no replica there is nothing to record (Knative's scraper finds no pod; `tide sim`
    records nothing there): after a spell at zero longer than the window, the first second of load is the
    whole average, not diluted by a window of zeros (which asked for 3 replicas here where the simulator
    asks for 5, at the start of every burst after a quiet spell)."""
    clock, backend = Clock(), RecordingBackend()
    gateway = Gateway()
    loads: dict[str, Load] = {}
    monkeypatch.setattr(gateway, "load_snapshot", lambda: loads)
    ctl = controller(store, gateway, clock, backend)
    autoscaling = {"profile": "knative", "min": 0, "max": 10, "initialScale": 0, "concurrency": 2}
    spec = idle("chat") | {"autoscaling": autoscaling}
    store.create_deployment("chat", spec, clock.now)
    for _ in range(40):  # 80 s at zero: longer than the 60-s window
        tick(ctl, clock, 2.0)
    ctl.on_demand("chat")  # a burst arrives: 8 requests wait for the second
    loads["chat"] = Load(8.0)
    scaler = ctl.runtimes["chat"].scaler
    assert scaler is not None
    for _ in range(2):
        tick(ctl, clock, 1.0)
    # The wake's request (1) and two seconds of 8, over the three seconds with data (not over 60).
    observed = (1.0 + 8.0 + 8.0) / 3
    assert scaler.status()["lastScalingDecision"]["observedStable"] == pytest.approx(observed, abs=1e-3)
    assert scaler.current == math.ceil(observed / scaler.config.target)  # 5.67 / (2 x 0.7): 5


def test_a_wake_between_ticks_waits_a_bounded_multiple_of_the_last_reconcile() -> None:
    """Writes that land while a reconcile runs join the next one after a short gap (a seed's creates are
    then routed in batches), and the gap stays small enough for a PATCH to reach the gateways at once."""
    assert wake_gap(0.002, 0.0) == pytest.approx(WAKE_GAP_FACTOR * 0.002)  # 100 deployments: a few ms
    assert wake_gap(0.002, 0.5) == 0.0  # woken long after the last one ended: at once
    assert wake_gap(10.0, 0.0) == WAKE_GAP_MAX_S <= 0.05  # a slow reconcile (a loaded machine): capped
    assert 0.0 < wake_gap(0.010, 0.005) < wake_gap(0.010, 0.0)  # time already waited counts


def test_the_autoscaler_is_told_how_many_requests_arrived(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `tide` policy prices a cold wait by what the deployment needs per request: the controller feeds
    it the growth of the gateways' request counter each second, as the simulator counts arrivals."""
    clock, backend = Clock(), RecordingBackend()
    gateway = Gateway()
    loads: dict[str, Load] = {}
    monkeypatch.setattr(gateway, "load_snapshot", lambda: loads)
    ctl = controller(store, gateway, clock, backend)
    store.create_deployment("dep1", idle("dep1"), clock.now)
    tick(ctl, clock, 1.0)
    ctl.on_demand("dep1")
    loads["dep1"] = Load(1.0, 5)
    tick(ctl, clock, 1.0)  # the first reading only sets where counting starts
    scaler = ctl.runtimes["dep1"].scaler
    assert scaler is not None, ctl.runtimes["dep1"].spec_error
    told: list[float] = []
    record = scaler.record

    def recording(now: float, concurrency: float, requests: float = 0.0, queued: float = 0.0) -> None:
        told.append(requests)
        record(now, concurrency, requests, queued)

    monkeypatch.setattr(scaler, "record", recording)
    for total in (12, 12, 3, 10):  # the gateway restarts (its counter starts again) before the third
        loads["dep1"] = Load(1.0, total)
        clock.now += 1.0
        ctl.sample_load()
    assert told == [7, 0, 0, 7]
