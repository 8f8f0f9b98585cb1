"""Engine load: each ready replica's own gauges (running, waiting, KV-cache use), scraped from its /metrics.

The gateway counts the requests it forwards; the engine also sees requests that reach it another way (a
client on the replica's address, a gateway whose counts do not reach this controller) and knows how full
its KV cache is. The controller scrapes every ready replica every `SCRAPE_INTERVAL_S` and keeps the last
reading; a reading older than `STALE_AFTER_S` is ignored (the replica stopped answering its /metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tide.engines.prometheus import EngineLoad, LoadMetricNames, parse_engine_load
from tide.timing import SCRAPE_TIMEOUT_S, STALE_AFTER_S

log = logging.getLogger("tide.control.engine_load")


@dataclass(frozen=True)
class ScrapeTarget:
    replica_id: str
    deployment_id: str
    metrics_url: str
    names: LoadMetricNames
    served_name: str


@dataclass(frozen=True)
class Reading:
    deployment_id: str
    load: EngineLoad
    at: float


def metrics_url(base_url: str, metrics_path: str) -> str:
    """The engine's /metrics from its OpenAI base URL (`http://host:port/v1` -> `http://host:port/metrics`)."""
    url = httpx.URL(base_url)
    return str(url.copy_with(path=metrics_path, query=None, fragment=None))


def engine_concurrency(loads: Iterable[EngineLoad]) -> float:
    return sum(load.running + load.waiting for load in loads)


def observed_concurrency(gateway: float, engine: Sequence[EngineLoad]) -> float:
    """What the autoscaler sees: the larger of the gateways' count and the engines' own count.

    Requests forwarded by a gateway are in both counts (in flight at the gateway, running or waiting in the
    engine), so the two are not added. Requests queued at the gateway are only in its count; requests that
    reached a replica directly are only in the engine's.
    """
    return max(gateway, engine_concurrency(engine)) if engine else gateway


class EngineLoadScraper:
    def __init__(
        self, clock: Callable[[], float], timeout_s: float = SCRAPE_TIMEOUT_S, stale_after_s: float = STALE_AFTER_S
    ) -> None:
        self.clock = clock
        self.timeout_s = timeout_s
        self.stale_after_s = stale_after_s
        self.readings: dict[str, Reading] = {}
        self._failing: set[str] = set()  # replicas whose last scrape failed: logged once, not every 2 s
        self._client: httpx.AsyncClient | None = None

    async def scrape(self, targets: Sequence[ScrapeTarget]) -> None:
        wanted = {t.replica_id for t in targets}
        for replica_id in set(self.readings) - wanted:
            del self.readings[replica_id]
        self._failing &= wanted
        if not targets:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        await asyncio.gather(*(self._scrape_one(self._client, t) for t in targets))

    async def _scrape_one(self, client: httpx.AsyncClient, target: ScrapeTarget) -> None:
        try:
            try:
                response = await client.get(target.metrics_url)
            except httpx.RemoteProtocolError:
                # The server closed the kept-alive connection as the scrape went out (a busy engine's server
                # times idle connections out); a GET is safe to send again, once, on a new connection.
                response = await client.get(target.metrics_url)
            response.raise_for_status()
            load = parse_engine_load(response.text, target.names, target.served_name)
        except (httpx.HTTPError, ValueError) as exc:
            if target.replica_id not in self._failing:
                self._failing.add(target.replica_id)
                log.warning("replica %s: no load from %s: %s", target.replica_id, target.metrics_url, exc)
            return
        self._failing.discard(target.replica_id)
        self.readings[target.replica_id] = Reading(target.deployment_id, load, self.clock())

    def fresh(self, replica_id: str, now: float) -> EngineLoad | None:
        reading = self.readings.get(replica_id)
        if reading is None or now - reading.at > self.stale_after_s:
            return None
        return reading.load

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def load_json(loads: list[EngineLoad]) -> dict[str, Any]:
    """Engine load as status shows it: requests summed over replicas, the fullest KV cache, and the prefix
    cache's hit rate (prompt tokens found cached / looked up, since the replicas started)."""
    out: dict[str, Any] = {
        "runningRequests": round(sum(load.running for load in loads)),
        "waitingRequests": round(sum(load.waiting for load in loads)),
    }
    usages = [load.kv_cache_usage for load in loads if load.kv_cache_usage is not None]
    if usages:
        out["kvCacheUsage"] = _significant(max(usages))
    counted = [load for load in loads if load.prefix_cache_hits is not None and load.prefix_cache_queries]
    if counted:
        hits = sum(load.prefix_cache_hits or 0.0 for load in counted)
        queries = sum(load.prefix_cache_queries or 0.0 for load in counted)
        out["prefixCacheHitRate"] = _significant(hits / queries)
    return out


def _significant(share: float) -> float:
    """A 0-1 share to 3 significant digits: one request in a large KV cache is 0.0004, and rounding it to
    3 decimals would show a busy engine's cache as empty."""
    return float(f"{share:.3g}")
