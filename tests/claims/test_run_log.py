"""RunLog and ClaimStore on SQLite and on a real Postgres (the `store` fixture runs every test on both)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tide.scheduling import Claim, ClaimSpec, RunInterval, gpu_minutes
from tide.store import Conflict, NotFound, Store
from tide.store.claims import ClaimStore, RunLog


def resources(count: int = 2, zones: tuple[str, ...] = ("us-east-04a",)) -> dict[str, object]:
    return {
        "resources": {
            "instanceId": "H100-8x",
            "instanceCount": count,
            "capacityType": "CAPACITY_TYPE_SERVERLESS",
            "zones": list(zones),
        }
    }


# -- RunLog ---------------------------------------------------------------------------------------------


def test_started_then_stopped_is_one_interval(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "chat-r0", 4, "i-1", 100.0)
    assert runs.intervals(0, 1000) == [RunInterval("chat", "chat-r0", 4, 100.0, None)]
    assert runs.open_runs() == [("chat", "chat-r0", 4, "i-1", 100.0)]
    assert runs.run_stopped("chat-r0", 161.5) == 1
    assert runs.intervals(0, 1000) == [RunInterval("chat", "chat-r0", 4, 100.0, 161.5)]
    assert runs.open_runs() == []
    assert runs.run_stopped("chat-r0", 200.0) == 0  # stopping twice is harmless
    assert runs.intervals(0, 1000)[0].stopped_at == 161.5


def test_started_twice_is_one_run(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "chat-r0", 4, "i-1", 100.0)
    runs.run_started("chat", "chat-r0", 4, "i-1", 130.0)
    assert runs.intervals(0, 1000) == [RunInterval("chat", "chat-r0", 4, 100.0, None)]


def test_a_replica_started_elsewhere_closes_its_previous_run(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "chat-r0", 4, "i-1", 100.0)
    runs.run_started("chat", "chat-r0", 4, "i-2", 130.0)
    assert runs.intervals(0, 1000) == [
        RunInterval("chat", "chat-r0", 4, 100.0, 130.0),
        RunInterval("chat", "chat-r0", 4, 130.0, None),
    ]


def test_a_stop_before_the_start_is_a_zero_length_run(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "chat-r0", 1, "i-1", 100.0)
    runs.run_stopped("chat-r0", 90.0)
    assert runs.intervals(0, 1000) == [RunInterval("chat", "chat-r0", 1, 100.0, 100.0)]


def test_intervals_are_the_runs_overlapping_the_window(store: Store) -> None:
    runs = RunLog(store)
    for n, (start, stop) in enumerate([(0.0, 50.0), (40.0, 100.0), (100.0, 200.0), (150.0, None), (300.0, None)]):
        runs.run_started("d", f"d-r{n}", 1, "i", start)
        if stop is not None:
            runs.run_stopped(f"d-r{n}", stop)
    # [50, 300): r0 stopped at 50 (not after the start); r4 starts at the end.
    assert [i.replica_id for i in runs.intervals(50.0, 300.0)] == ["d-r1", "d-r2", "d-r3"]
    assert [i.replica_id for i in runs.intervals(0.0, 1e12)] == ["d-r0", "d-r1", "d-r2", "d-r3", "d-r4"]


def test_close_all_open_closes_only_open_runs_at_the_restart_time(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("a", "a-r0", 1, "i", 10.0)
    runs.run_stopped("a-r0", 20.0)
    runs.run_started("a", "a-r1", 2, "i", 30.0)
    runs.run_started("b", "b-r0", 8, "j", 40.0)
    runs.run_started("b", "b-r1", 8, "j", 500.0)  # a clock that went backwards: zero length
    assert runs.close_all_open(100.0) == 3
    assert runs.close_all_open(200.0) == 0
    assert {(i.replica_id, i.stopped_at) for i in runs.intervals(0, 1000)} == {
        ("a-r0", 20.0),
        ("a-r1", 100.0),
        ("b-r0", 100.0),
        ("b-r1", 500.0),
    }
    assert runs.open_runs() == []


def test_prune_deletes_runs_that_ended_before_the_horizon_but_never_open_ones(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "old", 1, "i-1", 10.0)
    runs.run_stopped("old", 50.0)
    runs.run_started("chat", "recent", 1, "i-1", 10.0)
    runs.run_stopped("recent", 150.0)
    runs.run_started("chat", "still-running", 1, "i-1", 5.0)
    assert runs.prune(before=100.0) == 1
    assert [r.replica_id for r in runs.intervals(0, 1000)] == ["still-running", "recent"]
    assert runs.prune(before=100.0) == 0


def test_billing_from_the_log(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "chat-r0", 2, "i", 0.0)
    runs.run_stopped("chat-r0", 61.0)
    report = gpu_minutes(runs.intervals(0, 3600), 0, 3600)
    assert report.deployments == {"chat": 4}


def test_timestamps_keep_sub_second_precision(store: Store) -> None:
    runs = RunLog(store)
    runs.run_started("chat", "chat-r0", 1, "i", 1_764_000_000.125)
    runs.run_stopped("chat-r0", 1_764_000_060.125)
    assert runs.intervals(0, 2e9) == [RunInterval("chat", "chat-r0", 1, 1_764_000_000.125, 1_764_000_060.125)]


# -- ClaimStore -----------------------------------------------------------------------------------------


def test_claim_crud(store: Store) -> None:
    claims = ClaimStore(store)
    created = claims.create_claim("team-a", resources(), 10.0)
    assert (created.id, created.spec, created.created_at, created.updated_at) == ("team-a", resources(), 10.0, 10.0)
    assert claims.get_claim("team-a") == created
    updated = claims.update_claim("team-a", resources(3), 20.0)
    assert updated.spec == resources(3) and updated.created_at == 10.0 and updated.updated_at == 20.0
    assert claims.delete_claim("team-a") == updated
    assert claims.list_claims() == []


def test_claim_conflict_and_not_found(store: Store) -> None:
    claims = ClaimStore(store)
    claims.create_claim("team-a", resources(1), 1.0)
    with pytest.raises(Conflict, match="team-a"):
        claims.create_claim("team-a", resources(2), 2.0)
    assert claims.get_claim("team-a").spec == resources(1)
    for call in (
        lambda: claims.get_claim("nope"),
        lambda: claims.update_claim("nope", resources(), 1.0),
        lambda: claims.delete_claim("nope"),
    ):
        with pytest.raises(NotFound):
            call()


def test_claims_list_in_creation_order_as_scheduler_claims(store: Store) -> None:
    claims = ClaimStore(store)
    claims.create_claim("late", resources(1), 2.0)
    claims.create_claim("early", resources(2, ("us-east-04b", "us-east-04a")), 1.0)
    claims.create_claim("also-late", resources(1), 2.0)
    assert [c.id for c in claims.list_claims()] == ["early", "also-late", "late"]
    assert claims.claims()[0] == Claim(
        "early", ClaimSpec("H100-8x", 2, "CAPACITY_TYPE_SERVERLESS", ("us-east-04b", "us-east-04a"))
    )
    claims.update_claim("late", resources(5), 3.0)  # an update keeps the place in the queue
    assert [c.id for c in claims.list_claims()] == ["early", "also-late", "late"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_tables_exist_for_a_fresh_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    fresh = Store(url)
    try:
        assert RunLog(fresh).intervals(0, 1) == [] and ClaimStore(fresh).list_claims() == []
    finally:
        fresh.close()
