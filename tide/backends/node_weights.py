"""Weights for replicas on this node: fetched into the node cache and leased while a replica runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tide.backends.local import WeightsLease, WeightsUnavailable
from tide.spec import DeploymentSpec
from tide.weights import StorageConfig, WeightsCache, WeightsError, WeightsSource


class CachedWeights:
    """The local backend's view of the weights room: fetch into the node cache, hold a lease while running."""

    def __init__(self, storage: StorageConfig, cache: WeightsCache) -> None:
        self.storage = storage
        self.cache = cache

    async def fetch(self, spec: DeploymentSpec, on_progress: Callable[[dict[str, Any]], None]) -> WeightsLease:
        assert spec.weights is not None
        loop = asyncio.get_running_loop()

        def progress(p: Any) -> None:
            snapshot = {
                "bytesDone": p.bytes_done,
                "bytesTotal": p.bytes_total,
                "percent": round(p.percent, 1),
                "rateBytesPerSecond": round(p.rate_bytes_per_s),
            }
            # Progress may come from download threads; status is owned by the loop.
            loop.call_soon_threadsafe(on_progress, snapshot)

        source = WeightsSource(
            bucket=spec.weights.bucket,
            path=spec.weights.path,
            allow_patterns=spec.weights.allow_patterns,
            ignore_patterns=spec.weights.ignore_patterns,
        )
        try:
            lease = await self.cache.ensure(self.storage, source, progress=progress, require=("config.json",))
        except WeightsError as exc:
            raise WeightsUnavailable(str(exc)) from exc
        return WeightsLease(path=Path(lease.path), release=lease.release)
