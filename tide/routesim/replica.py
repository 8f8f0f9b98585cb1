"""A simulated replica: an LRU cache of KV blocks (named by prefix) and a service-time model.

Prefill runs one request at a time (it is compute-bound) and costs `prefill_s_per_block` per block not
already cached; decode overlaps with later prefills (continuous batching) and costs `decode_s_per_token`
per output token. TTFT = waiting for the prefill slot + the prefill. A request is in flight from arrival
until its last token; the cache is updated when the request arrives (its blocks are about to be computed).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceModel:
    cache_blocks: int = 1000  # KV blocks of 512 tokens a replica holds (~0.5M tokens: an 8B model on 80 GB)
    prefill_s_per_block: float = 0.04  # 512 tokens at ~13k tokens/s
    cached_s_per_block: float = 0.0  # a cached block costs (almost) nothing
    decode_s_per_token: float = 0.02


class SimReplica:
    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.cache: OrderedDict[int, None] = OrderedDict()
        self.prefill_free_at = 0.0
        self._finishes: list[float] = []
        self.requests = 0
        self.hit_blocks = 0
        self.blocks = 0

    def load(self, now: float) -> int:
        """Requests in flight at `now`."""
        finishes = self._finishes
        while finishes and finishes[0] <= now:
            heapq.heappop(finishes)
        return len(finishes)

    def serve(self, names: Sequence[int], output_tokens: int, now: float) -> float:
        """Admit a request arriving at `now` with these prefix-chained block names; returns its TTFT."""
        cache = self.cache
        hit = 0
        for name in names:
            if name not in cache:
                break
            hit += 1
        for name in reversed(names):  # vLLM frees a request's blocks tail first: the start stays longest
            if name in cache:
                cache.move_to_end(name)
            else:
                cache[name] = None
        while len(cache) > self.model.cache_blocks:
            cache.popitem(last=False)
        self.requests += 1
        self.hit_blocks += hit
        self.blocks += len(names)
        model = self.model
        start = max(now, self.prefill_free_at)
        prefill = (len(names) - hit) * model.prefill_s_per_block + hit * model.cached_s_per_block
        self.prefill_free_at = start + prefill
        heapq.heappush(self._finishes, start + prefill + output_tokens * model.decode_s_per_token)
        return start + prefill - now
