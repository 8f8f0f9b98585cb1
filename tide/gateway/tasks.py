"""Work the gateway runs off the request path: background tasks and the controller's callbacks."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

ReplicaCallback = Callable[[str], object]  # may return an awaitable; it is scheduled, not awaited


class BackgroundTasks:
    """Tasks started by the gateway and its exchanges, referenced until done (the event loop keeps only a
    weak reference: an unreferenced task can be garbage-collected mid-way)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[object]] = set()

    def spawn(self, awaitable: Awaitable[object]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def notify(self, callback: ReplicaCallback | None, argument: str) -> None:
        """Call `callback(argument)`; an awaitable it returns runs in the background. Errors are logged:
        a broken callback must not fail a request."""
        if callback is None:
            return
        try:
            result = callback(argument)
            if inspect.isawaitable(result):
                self.spawn(result)
        except Exception:
            log.exception("gateway callback %r failed", callback)
