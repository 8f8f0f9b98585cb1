"""A warm engine pool: engine processes started ahead of need, runtime imported, no model loaded.

A replica start takes one (`take`) and sends it its order (argv, environment, log file) on stdin; the
process then only loads its weights. The pool refills itself in the background. Pooled processes are no
replicas: nobody routes to them, the scheduler does not count them, they hold no GPU (CUDA is not
initialised until the order names the GPUs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tide.engines.events import parse_event
from tide.timing import RESPAWN_BACKOFF_MAX_S, RESPAWN_BACKOFF_MIN_S

log = logging.getLogger("tide.backends")


# Starts a pooled process: (argv, stderr file) -> the process, with stdin and stdout as pipes.
Spawner = Callable[[tuple[str, ...], IO[bytes]], Awaitable[asyncio.subprocess.Process]]


@dataclass
class Pooled:
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)
    warm: bool = False  # it announced `pooled`: imports done
    watcher: asyncio.Task[None] | None = None


class WarmPool:
    """`size` pre-started processes of one command (e.g. the built-in engine's pooled entry)."""

    def __init__(self, command: tuple[str, ...], size: int, spawn: Spawner, log_path: Path) -> None:
        if size < 0:
            raise ValueError("warm pool size must be >= 0")
        self.command = command
        self.size = size
        self._spawn = spawn
        self._log_path = log_path
        self._idle: list[Pooled] = []
        self._refill: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        self._closed = False
        self._failures = 0
        self.taken_total = 0
        self.missed_total = 0  # takes that found the pool empty (a plain launch happened)

    def start(self) -> None:
        if self.size and self._refill is None:
            self._refill = asyncio.create_task(self._refill_loop(), name="warm-pool-refill")
            self._wanted.set()

    @property
    def warm_count(self) -> int:
        return sum(1 for p in self._idle if p.warm and p.process.returncode is None)

    @property
    def starting_count(self) -> int:
        return sum(1 for p in self._idle if not p.warm and p.process.returncode is None)

    @property
    def warm_pids(self) -> list[int]:
        return [p.process.pid for p in self._idle if p.warm and p.process.returncode is None]

    def stop_refilling(self) -> None:
        """Keep the processes it has, start no more (the Ray backend's spare host turning into a replica)."""
        self.size = 0

    def take(self) -> asyncio.subprocess.Process | None:
        """A live pooled process (warm ones first, else the one furthest along), or None when empty."""
        live = [p for p in self._idle if p.process.returncode is None]
        if not live:
            self.missed_total += 1
            return None
        chosen = min(live, key=lambda p: (not p.warm, p.started))
        self._idle.remove(chosen)
        if chosen.watcher is not None:
            chosen.watcher.cancel()
        self.taken_total += 1
        self._wanted.set()
        return chosen.process

    async def _refill_loop(self) -> None:
        while not self._closed:
            await self._wanted.wait()
            self._wanted.clear()
            self._idle = [p for p in self._idle if p.process.returncode is None]
            while not self._closed and len(self._idle) < self.size:
                try:
                    pooled = await self._spawn_one()
                except Exception as exc:  # an OS error: say it, back off, try again
                    log.warning("warm pool: could not start %s: %s", " ".join(self.command), exc)
                    self._failures += 1
                    await asyncio.sleep(self._backoff())
                    continue
                self._idle.append(pooled)

    def _backoff(self) -> float:
        return min(RESPAWN_BACKOFF_MAX_S, RESPAWN_BACKOFF_MIN_S * 2 ** max(0, self._failures - 1))

    async def _spawn_one(self) -> Pooled:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab", buffering=0) as log_file:
            process = await self._spawn(self.command, log_file)
        pooled = Pooled(process)
        pooled.watcher = asyncio.create_task(self._watch(pooled))
        return pooled

    async def _watch(self, pooled: Pooled) -> None:
        """Until taken (which cancels this): note when it is warm; if it dies, let the refill replace it
        (after a backoff when it never got warm: a broken install must not spin)."""
        stdout = pooled.process.stdout
        assert stdout is not None
        while pooled.process.returncode is None and not pooled.warm:
            line = await stdout.readline()
            if not line:
                break
            event = parse_event(line.decode(errors="replace").strip())
            if event is not None and event.get("phase") == "pooled":
                pooled.warm = True
                self._failures = 0
                log.info("warm pool: pid %d warm in %.1f s", pooled.process.pid, time.monotonic() - pooled.started)
                # Read no further: the stdout pipe belongs to whoever takes the process.
        code = await pooled.process.wait()
        if self._closed:
            return
        with contextlib.suppress(ValueError):
            self._idle.remove(pooled)
        if pooled.warm:
            log.warning("warm pool: idle pid %d exited with %s; replacing it", pooled.process.pid, code)
        else:
            self._failures += 1
            log.warning(
                "warm pool: pid %d exited with %s before it was warm; see %s", pooled.process.pid, code, self._log_path
            )
            await asyncio.sleep(self._backoff())
        self._wanted.set()

    async def close(self) -> None:
        self._closed = True
        if self._refill is not None:
            self._refill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refill
        idle, self._idle = self._idle, []
        for pooled in idle:
            if pooled.watcher is not None:
                pooled.watcher.cancel()
            if pooled.process.stdin is not None:
                pooled.process.stdin.close()  # EOF: it exits on its own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pooled.process.pid, signal.SIGTERM)
        for pooled in idle:
            try:
                await asyncio.wait_for(pooled.process.wait(), timeout=5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pooled.process.pid, signal.SIGKILL)
                await pooled.process.wait()


def order_line(argv: tuple[str, ...], env: Mapping[str, str], log_path: Path) -> bytes:
    """What a pooled process reads on stdin to become a replica (tide.engines.builtin.pooled)."""
    return (json.dumps({"argv": list(argv), "env": dict(env), "log": str(log_path)}) + "\n").encode()


class PoolCounts(Protocol):
    """What /metrics reads of a pool: this module's `WarmPool`, or the Ray backend's spares."""

    @property
    def warm_count(self) -> int: ...
    @property
    def starting_count(self) -> int: ...

    taken_total: int
    missed_total: int


@runtime_checkable
class WarmPools(Protocol):
    """A backend with warm pools (the local backend; the Ray backend's spare hosts)."""

    def start_warm_pool(self) -> None: ...
    @property
    def warm_pools(self) -> list[PoolCounts]: ...


class WarmPoolMetrics(Collector):
    """tide_warm_pool_processes{state=warm|starting}, tide_warm_pool_takes_total{outcome=taken|missed}."""

    def __init__(self, pools: list[PoolCounts]) -> None:
        self.pools = pools

    def collect(self) -> Iterator[Metric]:
        processes = GaugeMetricFamily(
            "tide_warm_pool_processes", "Engine processes started ahead of need, by state", labels=["state"]
        )
        processes.add_metric(["warm"], sum(p.warm_count for p in self.pools))
        processes.add_metric(["starting"], sum(p.starting_count for p in self.pools))
        takes = CounterMetricFamily(
            "tide_warm_pool_takes",
            "Replica starts of pooled engines: taken from the pool, or missed (the pool was empty)",
            labels=["outcome"],
        )
        takes.add_metric(["taken"], sum(p.taken_total for p in self.pools))
        takes.add_metric(["missed"], sum(p.missed_total for p in self.pools))
        yield processes
        yield takes
