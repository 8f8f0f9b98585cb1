"""The activator queue: one deployment's requests waiting for a replica with room.

`ActivatorQueue` is the only code that changes a deployment's queue. It starts a request on a replica with
room when nobody waits before it (FIFO: nobody overtakes a request already waiting), else queues it, or
answers 429 when `max_queue` are waiting; it answers 503 to a request that waited `max_queue_wait_s`; it
hands waiting requests to replicas the moment one frees up or joins (`drain`); and it answers everyone
left when the deployment is removed or turns out to be failing (`fail_all`).

A request that failed on every replica it could try goes back to the head (`wait_again`: it was accepted
before everyone waiting) and waits for a replica it has not tried or, after `unhealthy_s`, for any.

Every change of the queue's length is told to the deployment's load meter (the autoscaler's signal).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tide.timing import RETRY_AFTER_S, UNHEALTHY_S

if TYPE_CHECKING:
    from tide.gateway.balancing import DeploymentState, ReplicaState


class Waiter(Protocol):
    """A request that may wait: what the queue needs of it (an `Exchange`)."""

    tried: set[str]  # replicas it failed on; the queue waits for another
    prefix: tuple[int, ...]  # its prompt's chunk names, for prefix-aware picking

    def start_on(self, replica: ReplicaState) -> None: ...

    def respond_error(
        self, status: int, message: str, error_type: str, code: str | None, retry_after_s: int | None = None
    ) -> None: ...


@dataclass(frozen=True)
class QueueSettings:
    """The gateway-wide settings of every deployment's queue (per deployment: `max_queue`, `max_queue_wait_s`)."""

    unhealthy_s: float = UNHEALTHY_S
    retry_after_s: int = RETRY_AFTER_S


class _Timers:
    __slots__ = ("retry", "timeout")

    def __init__(self, timeout: asyncio.TimerHandle, retry: asyncio.TimerHandle | None = None) -> None:
        self.timeout = timeout
        self.retry = retry

    def cancel(self) -> None:
        self.timeout.cancel()
        if self.retry is not None:
            self.retry.cancel()


class ActivatorQueue:
    __slots__ = ("_deployment", "_timers", "_waiting", "settings")

    def __init__(self, deployment: DeploymentState, settings: QueueSettings) -> None:
        self._deployment = deployment
        self.settings = settings
        self._waiting: deque[Waiter] = deque()
        self._timers: dict[Waiter, _Timers] = {}  # exactly the waiters in `_waiting`

    def __len__(self) -> int:
        return len(self._waiting)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def admit(self, waiter: Waiter) -> bool:
        """Start `waiter` on a replica with room if nobody waits, else queue it, or refuse it (429) when
        `max_queue` are waiting. True when it now waits."""
        deployment = self._deployment
        if not self._waiting:
            replica = deployment.pick_replica(prefix=waiter.prefix)
            if replica is not None:
                waiter.start_on(replica)
                return False
        if len(self._waiting) >= deployment.max_queue:
            waiter.respond_error(
                429,
                f"Too many requests waiting for deployment '{deployment.deployment_id}' "
                f"(queue full: max_queue={deployment.max_queue}); retry later",
                "rate_limit_error",
                "queue_full",
                retry_after_s=self.settings.retry_after_s,
            )
            return False
        self._waiting.append(waiter)
        loop = asyncio.get_running_loop()
        self._timers[waiter] = _Timers(loop.call_later(deployment.max_queue_wait_s, self._timed_out, waiter))
        deployment.load_changed()
        return True

    def wait_again(self, waiter: Waiter) -> None:
        """Back to the head (it was accepted before everyone waiting) until a replica it has not tried
        turns up; after `unhealthy_s` the ones it tried count again."""
        self._waiting.appendleft(waiter)
        loop = asyncio.get_running_loop()
        self._timers[waiter] = _Timers(
            loop.call_later(self._deployment.max_queue_wait_s, self._timed_out, waiter),
            loop.call_later(self.settings.unhealthy_s, self._forget_tried, waiter),
        )
        self._deployment.load_changed()

    def leave(self, waiter: Waiter) -> None:
        """`waiter` stops waiting (its client went away); nothing when it is not waiting."""
        timers = self._timers.pop(waiter, None)
        if timers is None:
            return
        timers.cancel()
        self._waiting.remove(waiter)
        self._deployment.load_changed()

    def drain(self) -> None:
        """Hand waiting requests to replicas with room, in order. A request that failed on every replica it
        could try waits at the head for one it has not tried (FIFO: nobody overtakes it)."""
        waiting = self._waiting
        deployment = self._deployment
        while waiting:
            head = waiting[0]
            replica = deployment.pick_replica(exclude=head.tried, prefix=head.prefix)
            if replica is None:
                return
            waiting.popleft()
            self._timers.pop(head).cancel()
            deployment.load_changed()
            head.start_on(replica)

    def fail_all(self, message: str, code: str, retry_after_s: int | None) -> None:
        """Answer everyone waiting 503 with `message` (the deployment was removed, is failing, or the
        gateway stops)."""
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            self._timers.pop(waiter).cancel()
            self._deployment.load_changed()
            waiter.respond_error(503, message, "server_error", code, retry_after_s)

    def _timed_out(self, waiter: Waiter) -> None:
        timers = self._timers.pop(waiter, None)
        if timers is None:
            return
        if timers.retry is not None:
            timers.retry.cancel()
        self._waiting.remove(waiter)
        deployment = self._deployment
        deployment.load_changed()
        waiter.respond_error(
            503,
            f"No replica of deployment '{deployment.deployment_id}' became ready within the queue wait "
            f"limit (max_queue_wait_s={deployment.max_queue_wait_s:g}); retry later",
            "server_error",
            "queue_timeout",
            retry_after_s=self.settings.retry_after_s,
        )

    def _forget_tried(self, waiter: Waiter) -> None:
        timers = self._timers.get(waiter)
        if timers is None:
            return
        timers.retry = None
        waiter.tried.clear()
        self.drain()
