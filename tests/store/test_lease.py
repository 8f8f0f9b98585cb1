"""Leader lease: the pure timing rules, the SQL that enforces them (SQLite and Postgres), and hold()."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.support.waiting import wait_until_async
from tide.store import Store
from tide.store.lease import LeaderLease, is_expired, leases, may_renew, may_take

# -- pure rules ----------------------------------------------------------------------------------------


def test_expiry_is_inclusive_at_the_deadline() -> None:
    assert not is_expired(10.0, 9.999)
    assert is_expired(10.0, 10.0)
    assert is_expired(10.0, 11.0)


@pytest.mark.parametrize(
    ("holder", "expires_at", "now", "take", "renew"),
    [
        (None, None, 5.0, True, False),  # no row yet
        ("me", 10.0, 5.0, True, True),  # ours, live
        ("me", 10.0, 10.0, True, False),  # ours, lapsed: retake (new term), never renew
        ("other", 10.0, 9.9, False, False),  # someone else's, live
        ("other", 10.0, 10.0, True, False),  # someone else's, lapsed
    ],
)
def test_may_take_and_may_renew(
    holder: str | None, expires_at: float | None, now: float, take: bool, renew: bool
) -> None:
    assert may_take(holder, expires_at, "me", now) is take
    assert may_renew(holder, expires_at, "me", now) is renew


# -- the database enforces the same rules --------------------------------------------------------------


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _row(store: Store, name: str = "controller") -> tuple[str, float, int] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(leases).where(leases.c.name == name)).first()
    return None if row is None else (row.holder, row.expires_at, row.term)


def test_first_holder_wins_until_expiry_then_the_second_takes_over(store: Store) -> None:
    clock = FakeClock(1000.0)
    a = LeaderLease(store, holder="a", ttl_s=10, clock=clock)
    b = LeaderLease(store, holder="b", ttl_s=10, clock=clock)
    assert a.try_acquire(1000.0) and a.is_leader and a.term == 1
    assert not b.try_acquire(1005.0) and not b.is_leader
    assert a.renew(1005.0)  # now good until 1015
    assert not b.try_acquire(1014.9)
    clock.t = 1015.0
    assert not a.is_leader  # by its own clock, before anyone tells it
    assert b.try_acquire(1015.0) and b.term == 2
    assert not a.renew(1015.1) and not a.is_leader
    assert _row(store) == ("b", 1025.0, 2)


def test_reacquire_while_live_keeps_the_term_and_after_lapse_bumps_it(store: Store) -> None:
    a = LeaderLease(store, holder="a", ttl_s=10, clock=FakeClock())
    assert a.try_acquire(0.0) and a.term == 1
    assert a.try_acquire(5.0) and a.term == 1
    assert not a.renew(15.0)  # lapsed: renew refuses even though nobody took it
    assert a.try_acquire(15.0) and a.term == 2


def test_release_lets_a_follower_take_over_at_once(store: Store) -> None:
    a = LeaderLease(store, holder="a", ttl_s=10, clock=FakeClock())
    b = LeaderLease(store, holder="b", ttl_s=10, clock=FakeClock())
    assert a.try_acquire(0.0)
    a.release()
    assert not a.is_leader
    assert b.try_acquire(0.1)


def test_leases_with_different_names_are_independent(store: Store) -> None:
    assert LeaderLease(store, name="controller", holder="a").try_acquire(0.0)
    assert LeaderLease(store, name="autoscaler", holder="b").try_acquire(0.0)


def test_accepts_an_engine_and_rejects_a_bad_ttl(store: Store) -> None:
    assert LeaderLease(store.engine, holder="a").try_acquire(0.0)
    with pytest.raises(ValueError, match="ttl_s"):
        LeaderLease(store, ttl_s=0)


@pytest.mark.parametrize(
    ("row", "now"),
    [
        (None, 5.0),
        (("me", 10.0), 5.0),
        (("me", 10.0), 10.0),
        (("other", 10.0), 9.9),
        (("other", 10.0), 10.0),
        (("other", 10.0), 20.0),
    ],
)
def test_sql_agrees_with_the_pure_rules(store: Store, row: tuple[str, float] | None, now: float) -> None:
    lease = LeaderLease(store, holder="me", ttl_s=10)
    if row is not None:
        with store.engine.begin() as conn:
            conn.execute(leases.insert().values(name="controller", holder=row[0], expires_at=row[1], term=1))
    holder, expires_at = row if row is not None else (None, None)
    assert lease.renew(now) is may_renew(holder, expires_at, "me", now)
    if row is not None:  # renew changed nothing, or extended our own lease: reset the row
        with store.engine.begin() as conn:
            conn.execute(leases.update().values(holder=row[0], expires_at=row[1]))
    assert lease.try_acquire(now) is may_take(holder, expires_at, "me", now)


@pytest.mark.parametrize("lapsed", [False, True], ids=["fresh", "lapsed"])
def test_racing_candidates_exactly_one_wins(db_url: str, lapsed: bool) -> None:
    stores = [Store(db_url) for _ in range(4)]  # one engine each, like separate processes
    try:
        if lapsed:
            assert LeaderLease(stores[0], holder="old", ttl_s=10).try_acquire(0.0)
        candidates = [LeaderLease(s, holder=f"c{i}", ttl_s=10) for i, s in enumerate(stores)]
        barrier = threading.Barrier(len(candidates))
        won: list[bool] = [False] * len(candidates)

        def campaign(i: int) -> None:
            barrier.wait()
            won[i] = candidates[i].try_acquire(100.0)

        threads = [threading.Thread(target=campaign, args=(i,)) for i in range(len(candidates))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sum(won) == 1, won
        assert _row(stores[0]) == (f"c{won.index(True)}", 110.0, 2 if lapsed else 1)
    finally:
        for s in stores:
            s.close()


# -- hold(): the async loop -----------------------------------------------------------------------------


def test_hold_elects_one_and_hands_over_on_cancel(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    events: list[str] = []

    async def main() -> None:
        a = LeaderLease(store, holder="a", ttl_s=0.6)
        b = LeaderLease(store, holder="b", ttl_s=0.6)

        async def elected_b() -> None:  # async callbacks are awaited, sync ones called
            events.append("b+")

        task_a = asyncio.create_task(a.hold(lambda: events.append("a+"), lambda: events.append("a-")))
        await wait_until_async(lambda: a.is_leader, 10, "a, alone, to be elected")
        task_b = asyncio.create_task(b.hold(elected_b, lambda: events.append("b-")))
        await asyncio.sleep(1.0)  # several renew periods: a keeps it, b keeps waiting
        assert events == ["a+"] and a.is_leader and not b.is_leader
        task_a.cancel()
        await asyncio.gather(task_a, return_exceptions=True)
        assert events == ["a+", "a-"]  # on_lost before the release: a stops acting before b starts
        # Released, so b needs one poll (ttl/3), not a whole ttl; the deadline only allows for a loaded machine.
        await wait_until_async(lambda: len(events) == 3, 10, "b to be elected after a released the lease")
        assert events == ["a+", "a-", "b+"]
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_hold_steps_down_when_it_cannot_renew_before_expiry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    events: list[tuple[str, float]] = []
    lease = LeaderLease(store, holder="a", ttl_s=0.6)

    def broken_renew(now: float) -> bool:
        raise OperationalError("UPDATE leases", {}, Exception("database went away"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(
            lease.hold(lambda: events.append(("elected", loop.time())), lambda: events.append(("lost", loop.time())))
        )
        while not events:
            await asyncio.sleep(0.01)
        monkeypatch.setattr(lease, "renew", broken_renew)
        await wait_until_async(lambda: len(events) >= 2, 10, "the leader to step down when renewals keep failing")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        store.close()
    assert [e for e, _ in events][:2] == ["elected", "lost"]
    # A database error alone is not a loss: it holds on until its own lease runs out, then steps down.
    # Not before its lease runs out (0.6 s after the election's acquire); the upper bound leaves room for a
    # loaded machine but fails a leader that waits a whole further ttl.
    assert 0.5 <= events[1][1] - events[0][1] <= 1.2, events
