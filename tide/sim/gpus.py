"""GPUs physically held on each instance, and replicas waiting for them.

The scheduler hands a preempted replica's GPUs to the preempting replica at once, but the victim keeps
them until its in-flight requests have finished (it drains). The new replica waits here until they are
free, and only then starts its cold start: GPU-seconds are never counted twice.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar


class GpuUser(Protocol):
    @property
    def instance_id(self) -> str: ...

    @property
    def gpus(self) -> int: ...


T = TypeVar("T", bound=GpuUser)


class GpuLedger(Generic[T]):
    def __init__(self, gpus_per_instance: dict[str, int]) -> None:
        self.free = dict(gpus_per_instance)
        self.in_use = 0
        self.peak = 0
        self._waiting: dict[str, deque[T]] = {}

    def acquire(self, user: T) -> bool:
        """Take the GPUs now if free, otherwise wait for them. True when taken.

        Jumping the queue is safe: the scheduler never places more than an instance holds, so every
        waiter fits once the draining replicas are gone.
        """
        if self.free[user.instance_id] >= user.gpus:
            self._take(user)
            return True
        self._waiting.setdefault(user.instance_id, deque()).append(user)
        return False

    def cancel(self, user: T) -> None:
        """A waiting user that will never need its GPUs (stopped or preempted before it got them)."""
        queue = self._waiting.get(user.instance_id)
        if queue is not None and user in queue:
            queue.remove(user)

    def release(self, user: T) -> list[T]:
        """Give back `user`'s GPUs; returns the waiting users that now have theirs, in arrival order."""
        self.free[user.instance_id] += user.gpus
        self.in_use -= user.gpus
        queue = self._waiting.get(user.instance_id)
        if not queue:
            return []
        granted = [waiter for waiter in list(queue) if self._try_take(waiter)]
        for waiter in granted:
            queue.remove(waiter)
        return granted

    def _try_take(self, user: T) -> bool:
        if self.free[user.instance_id] < user.gpus:
            return False
        self._take(user)
        return True

    def _take(self, user: T) -> None:
        self.free[user.instance_id] -= user.gpus
        self.in_use += user.gpus
        self.peak = max(self.peak, self.in_use)
