"""The Ray backend's warm pool: per node, `size` spare replica hosts started ahead of need.

A spare is a `ReplicaHost` actor pinned to its node with no GPUs and no CPUs reserved, whose local
backend keeps one built-in engine process warm (runtime imported, no model). A replica start on that node
takes a spare (`take`) instead of creating an actor and an engine process from nothing; the backend
reserves the replica's GPUs apart (`GpuHold`), so Ray's GPU books stay exact. Spares are no replicas:
nobody routes to them, the scheduler does not count them, they hold no GPU. The pool refills in the
background, follows the inventory (a node that leaves takes its spares with it; one that joins gets
some), replaces a spare whose actor died after a back-off, and ends every spare on `close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from tide.backends.ray.inventory import RayInventory, short_id
from tide.timing import RAY_SPARE_CHECK_S, RESPAWN_BACKOFF_MAX_S, RESPAWN_BACKOFF_MIN_S

log = logging.getLogger("tide.backends.ray")

# Creates a spare host actor pinned to a node: (node id, actor name) -> the actor handle.
SpareFactory = Callable[[str, str], Any]


@dataclass
class Spare:
    node_id: str
    actor: Any  # ray.actor.ActorHandle
    pid: int | None = None  # its warm engine process, once warm
    ready: bool = False
    dead: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class RaySpares:
    """`size` spares on every node of the inventory."""

    def __init__(self, size: int, inventory: RayInventory, create: SpareFactory) -> None:
        if size < 0:
            raise ValueError("warm pool size must be >= 0")
        self.size = size
        self._inventory = inventory
        self._create = create
        self._spares: dict[str, list[Spare]] = {}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._names = itertools.count(1)
        self._wanted = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False
        self.taken_total = 0
        self.missed_total = 0  # builtin-engine starts that found no ready spare on their node

    def start(self) -> None:
        if self.size and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._refill_loop(), name="ray-spares")

    @property
    def warm_count(self) -> int:
        return sum(1 for spares in self._spares.values() for s in spares if s.ready and not s.dead)

    @property
    def starting_count(self) -> int:
        return sum(1 for spares in self._spares.values() for s in spares if not s.ready and not s.dead)

    def spares(self, node_id: str) -> list[Spare]:
        return [s for s in self._spares.get(node_id, []) if not s.dead]

    def take(self, node_id: str) -> Spare | None:
        """A ready spare on that node (no longer the pool's: the caller owns its actor), or None."""
        if not self.size:
            return None
        ready = [s for s in self.spares(node_id) if s.ready]
        if not ready:
            self.missed_total += 1
            return None
        spare = ready[0]
        self._spares[node_id].remove(spare)
        if spare.task is not None:
            spare.task.cancel()
        self.taken_total += 1
        self._wanted.set()
        return spare

    async def _refill_loop(self) -> None:
        while not self._closed:
            try:
                self._reconcile(asyncio.get_running_loop().time())
            except Exception:  # a bug or Ray refusing an actor: say it, try again at the next check
                log.exception("ray warm pool: could not keep the spares")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), RAY_SPARE_CHECK_S)
            self._wanted.clear()

    def _reconcile(self, now: float) -> None:
        nodes = {i.id for i in self._inventory.current().instances if not i.joining}
        for node_id in [n for n in self._spares if n not in nodes]:  # the node left: so do its spares
            for spare in self._spares.pop(node_id):
                self._end(spare)
        for node_id in sorted(nodes):
            spares = self._spares.setdefault(node_id, [])
            spares[:] = [s for s in spares if not s.dead]
            if now < self._retry_at.get(node_id, 0.0):
                continue
            while len(spares) < self.size:
                name = f"tide-spare-{short_id(node_id)}-{next(self._names)}"
                spare = Spare(node_id, self._create(node_id, name))
                spare.task = asyncio.create_task(self._keep(spare), name=name)
                spares.append(spare)

    async def _keep(self, spare: Spare) -> None:
        """Warm the spare up, then notice its actor's death (the node's OOM killer, say) until it is taken."""
        try:
            spare.pid = await await_ref(spare.actor.spare.remote())
            spare.ready = True
            self._failures.pop(spare.node_id, None)
            await await_ref(spare.actor.until_gone.remote())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # RayError: the actor died or could not start; anything else: say it too
            if self._closed:
                return
            failures = self._failures[spare.node_id] = self._failures.get(spare.node_id, 0) + 1
            backoff = min(RESPAWN_BACKOFF_MAX_S, RESPAWN_BACKOFF_MIN_S * 2 ** (failures - 1))
            self._retry_at[spare.node_id] = asyncio.get_running_loop().time() + backoff
            log.warning(
                "ray warm pool: spare %s on %s ended (%s); replacing it in %.0f s",
                spare.pid, self._inventory.describe(spare.node_id), str(exc).splitlines()[0] if str(exc) else exc,
                backoff,
            )  # fmt: skip
        spare.dead = True
        _kill(spare.actor)
        self._wanted.set()

    def _end(self, spare: Spare) -> None:
        spare.dead = True
        if spare.task is not None:
            spare.task.cancel()
        _kill(spare.actor)

    async def close(self) -> None:
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        spares = [s for node in self._spares.values() for s in node]
        self._spares.clear()
        for spare in spares:
            self._end(spare)


def _kill(actor: Any) -> None:
    with contextlib.suppress(Exception):
        ray.kill(actor, no_restart=True)


async def await_ref(ref: Any) -> Any:
    """Await a Ray ObjectRef on any event loop (uvloop included)."""
    return await asyncio.wrap_future(ref.future())
