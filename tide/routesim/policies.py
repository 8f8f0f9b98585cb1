"""The routing policies the simulator compares. Each sees what a router sees: the request's block names
(what a router would derive from its text), and the requests in flight per replica (the router's own
count). Tide's is the gateway's own code (`tide.gateway.prefix`); the others are models of the peers."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from tide.gateway.cachefeedback import CacheFeedback
from tide.gateway.prefix import DEFAULT_INDEX_CHUNKS, PrefixAwarePolicy, PrefixIndex


class SimPolicy(Protocol):
    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int: ...


class RandomPolicy:
    def __init__(self, replicas: int, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._replicas = replicas

    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int:
        return self._random.randrange(self._replicas)


class RoundRobinPolicy:
    def __init__(self, replicas: int) -> None:
        self._replicas = replicas
        self._next = 0

    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int:
        chosen = self._next
        self._next = (chosen + 1) % self._replicas
        return chosen


class LeastLoadedPolicy:
    """Tide's gateway before prefix awareness: fewest in flight, ties round-robin."""

    def __init__(self, replicas: int) -> None:
        self._replicas = replicas
        self._start = 0

    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int:
        count = self._replicas
        start = self._start
        self._start = (start + 1) % count
        return min(((start + i) % count for i in range(count)), key=lambda p: loads[p])


class VllmRouterCacheAware:
    """vllm-router's `cache_aware` policy as of 0.1.17 (src/policies/cache_aware.rs `select_prepared`,
    src/tree.rs), with its defaults.

    - The tree is keyed on the prompt's token ids, which the router asks every replica to render
      (`/v1/completions/render`); each replica's own part of the tree gives its match rate, matched /
      prompt tokens. (A replica that renders nothing sends the router to its fallback, the least in
      flight with no tree at all: not modelled; vLLM needs `--enable-scale-out` for the render endpoint.)
    - Imbalanced when (max load - min load) > balance_abs_threshold AND max > min * balance_rel_threshold:
      then the least loaded (the first of equals) gets the request.
    - Otherwise, if the best replica's rate > cache_threshold, the least loaded (first of equals) of the
      replicas at that best rate; else the least loaded of all. The prompt is inserted into the chosen
      replica's part of the tree at selection, before the request runs.
    - Every eviction_interval_secs, each replica's part of the tree is cut to max_tree_size characters,
      least recently used leaves first. Nothing else forgets: the tree does not know the engine's cache.
    Modelled on blocks: a key holds 8 hex characters per token, so a 512-token block is `chars_per_block`
    (4,096) characters of the budget.
    """

    def __init__(
        self,
        replicas: int,
        cache_threshold: float = 0.3,
        balance_abs_threshold: int = 64,
        balance_rel_threshold: float = 1.5,
        eviction_interval_s: float = 120.0,
        max_tree_size: int = 2**25,
        chars_per_block: int = 8 * 512,
    ) -> None:
        self.cache_threshold = cache_threshold
        self.balance_abs_threshold = balance_abs_threshold
        self.balance_rel_threshold = balance_rel_threshold
        self.eviction_interval_s = eviction_interval_s
        self.max_tree_blocks = max(1, max_tree_size // chars_per_block)
        self._trees: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(replicas)]
        self._next_eviction = eviction_interval_s

    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int:
        if now >= self._next_eviction:
            self._next_eviction = now + self.eviction_interval_s
            for tree in self._trees:
                while len(tree) > self.max_tree_blocks:
                    tree.popitem(last=False)
        least, most = min(loads), max(loads)
        candidates: Sequence[int] = range(len(loads))
        if not (most - least > self.balance_abs_threshold and most > least * self.balance_rel_threshold) and names:
            rates = [self._matched(tree, names) / len(names) for tree in self._trees]
            best = max(rates)
            if best > self.cache_threshold:
                candidates = [r for r, rate in enumerate(rates) if rate == best]
        chosen = min(candidates, key=lambda r: loads[r])  # the first of equals
        self._insert(chosen, names)
        return chosen

    @staticmethod
    def _matched(tree: OrderedDict[int, None], names: Sequence[int]) -> int:
        matched = 0
        for name in names:
            if name not in tree:
                break
            matched += 1
        return matched

    def _insert(self, replica: int, names: Sequence[int]) -> None:
        tree = self._trees[replica]
        for name in names:
            if name in tree:
                tree.move_to_end(name)
            else:
                tree[name] = None


class TidePrefixAware:
    """Tide's policy (the gateway's code), with each replica's index sized to its cache (one entry per
    block); in the gateway the size comes from the deployment (see docs/ROUTING.md).

    The gateway names a prompt's first 384 bytes as one chunk: with blocks of fewer bytes (a trace
    scaled down to a small model), `first_chunk_blocks` > 1 has the policy see the first that many blocks
    as one name (the chained name of the last of them), as the gateway would; a prompt shorter than that
    has no name (least-loaded)."""

    def __init__(
        self, replicas: int, index_blocks: int, policy: PrefixAwarePolicy | None = None, first_chunk_blocks: int = 1
    ) -> None:
        self.policy = policy or PrefixAwarePolicy()
        self.indexes = [PrefixIndex(index_blocks) for _ in range(replicas)]
        self.skip = max(0, first_chunk_blocks - 1)

    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int:
        return self._place(names, loads)[0]

    def _place(self, names: Sequence[int], loads: Sequence[int]) -> tuple[int, Sequence[int], int]:
        """The replica chosen, the names the policy saw (after the first chunk's merge), how many it held."""
        names = names[self.skip :]
        chosen, held = self.policy.place(loads, self.indexes, names)
        self.indexes[chosen].insert(names, held)
        return chosen, names, held


class TideWithFeedback(TidePrefixAware):
    """Tide's policy with the gateway's own index size (`DEFAULT_INDEX_CHUNKS`: the gateway does not know
    the engine's cache size), corrected after each request by how many of its blocks the replica had
    cached, as the gateway corrects it from vLLM's reported cached tokens (tide/gateway/cachefeedback.py,
    through its `sent`, so only the predictions the gateway would check are checked: a sample once the
    index is steady; the simulated cache is updated at arrival, so every observation is clean).
    `feedback=False`: the same oversized index, uncorrected."""

    def __init__(
        self,
        replicas: int,
        index_blocks: int = DEFAULT_INDEX_CHUNKS,
        feedback: bool = True,
        first_chunk_blocks: int = 1,
    ) -> None:
        super().__init__(replicas, index_blocks, first_chunk_blocks=first_chunk_blocks)
        self.feedback = [CacheFeedback(index_blocks) for _ in range(replicas)] if feedback else None
        # chosen, names, held, the prediction to check (0: none), index requests
        self._sent: tuple[int, Sequence[int], int, int, int] = (0, (), 0, 0, 0)

    def choose(self, names: Sequence[int], loads: Sequence[int], now: float) -> int:
        chosen, names, held = self._place(names, loads)
        feedback = self.feedback
        predicted = feedback[chosen].sent(names[0], held, len(names)) if feedback is not None and names else 0
        self._sent = (chosen, names, held, predicted, self.indexes[chosen].requests)
        return chosen

    def observe(self, hit_blocks: int) -> None:
        """The last request chosen found `hit_blocks` of its blocks cached."""
        chosen, names, held, predicted, requests = self._sent
        if self.feedback is None or not names:
            return
        feedback = self.feedback[chosen]
        if predicted:
            confirmed = max(0, hit_blocks - self.skip)
            feedback.observe(self.indexes[chosen], names, predicted, requests, confirmed)
        if held < len(names):  # counted in flight (it brought names)
            feedback.ended(names[0])


# (replicas, cache blocks per replica, blocks the gateway's first named chunk spans) -> a fresh policy
PolicyFactory = Callable[[int, int, int], SimPolicy]

POLICIES: dict[str, PolicyFactory] = {
    "random": lambda n, _blocks, _first: RandomPolicy(n),
    "round-robin": lambda n, _blocks, _first: RoundRobinPolicy(n),
    "least-loaded": lambda n, _blocks, _first: LeastLoadedPolicy(n),
    "vllm-router": lambda n, _blocks, _first: VllmRouterCacheAware(n),
    "tide": lambda n, blocks, first: TidePrefixAware(n, blocks, first_chunk_blocks=first),
    "tide-unsized": lambda n, _blocks, first: TideWithFeedback(n, feedback=False, first_chunk_blocks=first),
    "tide-feedback": lambda n, _blocks, first: TideWithFeedback(n, first_chunk_blocks=first),
}
