"""The activator queue on its own (in-process, no sockets): FIFO hand-over of freed replicas, retries
waiting at the head for an untried replica, the queue's limits, and the load meter seeing every change."""

from __future__ import annotations

import asyncio

from tests.gateway.helpers import run
from tests.support.waiting import wait_until_async
from tide.gateway.activator import ActivatorQueue, QueueSettings
from tide.gateway.balancing import DeploymentState, ReplicaState
from tide.gateway.routes import DeploymentRoute, ReplicaEndpoint


class FakeWaiter:
    """A request: records where it started or how it was answered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tried: set[str] = set()
        self.prefix: tuple[int, ...] = ()
        self.started_on: str | None = None
        self.error: tuple[int, str | None] | None = None

    def start_on(self, replica: ReplicaState) -> None:
        self.started_on = replica.replica_id
        replica.in_flight += 1
        replica.deployment.in_flight += 1

    def respond_error(
        self, status: int, message: str, error_type: str, code: str | None, retry_after_s: int | None = None
    ) -> None:
        self.error = (status, code)


def deployment(*replica_ids: str, max_queue: int = 10, max_queue_wait_s: float = 30.0) -> DeploymentState:
    endpoints = tuple(ReplicaEndpoint(r, f"http://127.0.0.1:{9000 + i}/v1", 1) for i, r in enumerate(replica_ids))
    route = DeploymentRoute("d", "m", 100, endpoints, max_queue=max_queue, max_queue_wait_s=max_queue_wait_s)
    state = DeploymentState(route, QueueSettings(unhealthy_s=0.2, retry_after_s=3))
    state.replicas = [ReplicaState(endpoint, state) for endpoint in endpoints]
    return state


def free(replica: ReplicaState) -> None:
    replica.in_flight -= 1
    replica.deployment.in_flight -= 1


def test_a_freed_replica_goes_to_the_oldest_waiter_and_the_meter_sees_the_queue() -> None:
    async def scenario() -> None:
        d = deployment("r1")
        queue: ActivatorQueue = d.queue
        first, second, third = FakeWaiter("a"), FakeWaiter("b"), FakeWaiter("c")
        assert queue.admit(first) is False and first.started_on == "r1"  # room: started at once
        assert queue.admit(second) is True and queue.admit(third) is True
        assert len(queue) == 2 and d.meter.queued == 2
        free(d.replicas[0])
        queue.drain()
        assert second.started_on == "r1" and third.started_on is None  # FIFO
        assert len(queue) == 1 and d.meter.queued == 1
        queue.leave(third)  # its client went away
        assert len(queue) == 0 and d.meter.queued == 0 and third.error is None

    run(scenario())


def test_a_retried_request_waits_at_the_head_for_an_untried_replica_then_for_any() -> None:
    async def scenario() -> None:
        d = deployment("r1")
        queue = d.queue
        retried, later = FakeWaiter("retried"), FakeWaiter("later")
        retried.tried.add("r1")
        queue.wait_again(retried)
        queue.admit(later)
        queue.drain()  # r1 has room, but the head has tried it and nobody overtakes the head
        assert retried.started_on is None and later.started_on is None
        # After unhealthy_s the replicas it tried count again: the head gets r1.
        await wait_until_async(lambda: retried.started_on == "r1", 5.0, "the retried request to get r1 again")
        assert later.started_on is None and len(queue) == 1

    run(scenario())


def test_full_queue_is_refused_429_and_a_long_wait_answered_503() -> None:
    async def scenario() -> None:
        d = deployment(max_queue=1, max_queue_wait_s=0.1)
        waiting, refused = FakeWaiter("waiting"), FakeWaiter("refused")
        assert d.queue.admit(waiting) is True
        assert d.queue.admit(refused) is False and refused.error == (429, "queue_full")
        await wait_until_async(lambda: waiting.error is not None, 5.0, "the queue wait limit")
        assert waiting.error == (503, "queue_timeout") and len(d.queue) == 0

    run(scenario())


def test_fail_all_answers_everyone_waiting_and_stops_their_timers() -> None:
    async def scenario() -> None:
        d = deployment(max_queue_wait_s=0.05)
        waiters = [FakeWaiter(str(i)) for i in range(3)]
        for waiter in waiters:
            d.queue.admit(waiter)
        d.queue.fail_all("removed", "unavailable", 1)
        assert [w.error for w in waiters] == [(503, "unavailable")] * 3 and len(d.queue) == 0
        await asyncio.sleep(0.1)  # past the wait limit: a leftover timer would answer again (as a 503 timeout)
        assert [w.error for w in waiters] == [(503, "unavailable")] * 3

    run(scenario())
