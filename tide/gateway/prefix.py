"""Prefix-cache-aware replica choice: which replica most likely holds a request's prompt prefix cached.

Pure: no I/O and no clock. The gateway and the routing simulator (`python -m tide.routesim`) run this code.

A prompt is cut into chunks of the request's own JSON bytes from its `"messages"` (or `"prompt"`) key on
(no tokenizing, no re-serializing; 256 bytes first, longer further in), and each chunk is named by a
chained hash (of all chunks up to it; sampled beyond 2 KiB), so one name stands for the whole prefix up to
that chunk, as vLLM names its KV blocks. Each replica keeps a bounded LRU of the names recently sent to it
(`PrefixIndex`), touched tail first so a prompt's tail is forgotten before its start, as vLLM evicts: it
mirrors the engine's own LRU block cache, so what the engine has likely evicted is forgotten here too, and
memory per replica is bounded. A replica that restarts or fails gets an empty index.

The choice (`PrefixAwarePolicy.choose`): among the replicas the caller allows, those whose load is close
enough to the least loaded's (the more of the prompt a replica holds, the more load it may carry) are
eligible; of those, the one holding the longest prefix wins, ties to the less loaded and then to the one
sent fewer requests (new conversations spread evenly, so each cache holds its share). When no replica
holds more than what every replica holds (a shared system prompt), it is plain least-loaded routing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

CHUNK_BYTES = 256  # the first chunks: about 64 tokens of English text (vLLM's blocks are 16 tokens)
MAX_PROMPT_BYTES = 1 << 20  # only the first MiB of a prompt is named
DEFAULT_INDEX_CHUNKS = 32_768  # names per replica (~1 MiB of memory); chunks average well above 256 bytes


def _boundaries() -> tuple[int, ...]:
    # Chunks grow with the prefix they extend (each is half of what precedes it, at least CHUNK_BYTES):
    # 9 names for an 8 KiB prompt, 16 for 128 KiB, so the gateway's work per request stays small, while
    # the last name still covers two thirds of the prompt.
    ends = [CHUNK_BYTES]
    while ends[-1] < MAX_PROMPT_BYTES:
        ends.append(ends[-1] + max(CHUNK_BYTES, ends[-1] // 2))
    return tuple(ends)


BOUNDARIES = _boundaries()
MAX_CHUNKS = len(BOUNDARIES)
FULL_BYTES = 2048  # chunks within the first 2 KiB are hashed whole
WINDOW_BYTES = 32
# Beyond FULL_BYTES a chunk is named by its first and last WINDOW_BYTES (and, chained, everything named
# before it), not by all its bytes: hashing costs about as much per byte as parsing the JSON (~1 ns/byte
# on the bench machine), which would add 15-30% to the gateway's work on long prompts. Texts that diverge
# stay different, so a divergence is seen at the next window; what goes unseen is an edit inside the
# unsampled middle of a later chunk, followed by identical text (a routing estimate, not a cache key).
# The naming runs in C (itemgetter slices, prefix-tuple hashes): a Python loop over chunks cost as much again.
_PARTS: list[slice] = []
_PARTS_UP_TO: list[int] = [0]  # parts naming the first k chunks
for _start, _end in zip((0, *BOUNDARIES[:-1]), BOUNDARIES, strict=True):
    if _end <= FULL_BYTES:
        _PARTS.append(slice(_start, _end))
    else:
        _PARTS += [slice(_start, _start + WINDOW_BYTES), slice(_end - WINDOW_BYTES, _end)]
    _PARTS_UP_TO.append(len(_PARTS))
_GETTERS: list[Callable[[bytes], tuple[bytes, ...]]] = [lambda data: ()]
_GETTERS += [
    itemgetter(*_PARTS[: _PARTS_UP_TO[count]]) if _PARTS_UP_TO[count] > 1 else (lambda data: (data[:CHUNK_BYTES],))
    for count in range(1, MAX_CHUNKS + 1)
]
_PREFIXES = [slice(0, _PARTS_UP_TO[count]) for count in range(1, MAX_CHUNKS + 1)]


def prompt_chunks(raw: bytes, body: object, max_chunks: int = MAX_CHUNKS) -> tuple[int, ...]:
    """The chained chunk names of an OpenAI request's prompt; () if it has none. `raw` is the request body
    as received, `body` the same parsed.

    Named from the `"messages"` (else `"prompt"`) key on, so fields sent before it do not matter; turn
    k+1 of a chat resends turn k's messages first, so its bytes start with turn k's, up to the closing
    bracket and the fields after it, which fall in the last, partial chunk (mostly) that is never named,
    as the engine caches only whole blocks.
    """
    if not isinstance(body, dict):
        return ()
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        start = raw.find(b'"messages"')
    elif isinstance(body.get("prompt"), str | list):
        start = raw.find(b'"prompt"')
    else:
        return ()
    return chain_chunks(raw[start:] if start > 0 else raw, max_chunks)


def chain_chunks(data: bytes, max_chunks: int = MAX_CHUNKS) -> tuple[int, ...]:
    """Chained names of the whole chunks of `data` (chunk ends at BOUNDARIES), from sampled windows."""
    count = min(bisect_right(BOUNDARIES, len(data)), max_chunks)
    parts = _GETTERS[count](data)
    return tuple(map(hash, map(parts.__getitem__, _PREFIXES[:count])))


def chain_ids(ids: Sequence[int]) -> tuple[int, ...]:
    """Chained names for a sequence of block ids (the simulator's traces name blocks by id)."""
    names: list[int] = []
    name = 0
    for block in ids:
        name = hash((name, block))
        names.append(name)
    return tuple(names)


class PrefixIndex:
    """A bounded LRU of the chunk names recently sent to one replica."""

    __slots__ = ("_names", "capacity", "requests")

    def __init__(self, capacity: int = DEFAULT_INDEX_CHUNKS) -> None:
        if capacity < 1:
            raise ValueError("a prefix index needs a capacity of at least 1 chunk")
        self.capacity = capacity
        self.requests = 0  # requests recorded since the replica (or its index) started
        self._names: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._names)

    def match(self, chunks: Sequence[int]) -> int:
        """How many leading chunks of the prompt this replica likely holds.

        What an index holds is prefix-closed: a name is always touched right after the next one of its
        chain (every prompt holding it holds its predecessors, inserted tail first), so it is more
        recent and outlives it. Hence a binary search, and one lookup for a prompt held whole."""
        names = self._names
        if not chunks or chunks[0] not in names:
            return 0
        high = len(chunks) - 1
        if chunks[high] in names:
            return high + 1
        low = 1  # chunks[:low] are held, chunks[high] is not
        while low < high:
            middle = (low + high) // 2
            if chunks[middle] in names:
                low = middle + 1
            else:
                high = middle
        return low

    def insert(self, chunks: Sequence[int]) -> None:
        """The replica was sent this prompt: its chunks become the most recent, its first chunk most of all
        (vLLM frees a request's blocks tail first); the least recent fall out."""
        self.requests += 1
        names = self._names
        for name in reversed(chunks):
            if name in names:
                names.move_to_end(name)
            else:
                names[name] = None
        excess = len(names) - self.capacity
        for _ in range(excess):
            names.popitem(last=False)

    def clear(self) -> None:
        self._names.clear()
        self.requests = 0


@dataclass(frozen=True)
class PrefixAwarePolicy:
    """Load slack: a replica may be chosen while its load (requests in flight) is at most
    `slack * (1 + extra / chunks)` above the least loaded replica's, where slack = max(slack_abs,
    slack_rel * least) and `extra` is how many more of the prompt's chunks it holds than the replica that
    holds fewest: a replica holding the whole prompt may run up to twice the slack ahead, one holding
    nothing more than the others none, so a hot prefix cannot pile requests on one replica while
    another idles. Measured on the Mooncake trace (docs/ROUTING.md): this beat a fixed slack and a
    cost model (prefill saved vs. queue ahead) on hit rate and on balance."""

    slack_abs: int = 4
    slack_rel: float = 0.5

    def choose(self, loads: Sequence[int], indexes: Sequence[PrefixIndex], chunks: Sequence[int]) -> int:
        """The position (in `loads`/`indexes`, one entry per allowed replica, at least one) to send to."""
        count = len(loads)
        if count == 1:
            return 0
        matches = [index.match(chunks) for index in indexes]
        floor = min(matches)  # what every replica holds (a shared system prompt) does not set them apart
        top = max(matches)
        least = min(loads)
        if top > floor:
            # The replicas holding the most, while within the load slack for what they hold extra.
            limit = least + max(self.slack_abs, self.slack_rel * least) * (1 + (top - floor) / len(chunks))
            holders = [p for p in range(count) if matches[p] == top and loads[p] <= limit]
            if len(holders) == 1:
                return holders[0]
            if not holders:  # the best-placed are too busy: the rest by extra held, then load
                return self._by_extra(loads, indexes, matches, floor, least, len(chunks))
            return min(holders, key=lambda p: (loads[p], indexes[p].requests))
        best = 0  # nobody holds more than the others: least loaded, then fewest sent
        for position in range(1, count):
            if loads[position] < loads[best] or (
                loads[position] == loads[best] and indexes[position].requests < indexes[best].requests
            ):
                best = position
        return best

    def _by_extra(
        self, loads: Sequence[int], indexes: Sequence[PrefixIndex], matches: list[int], floor: int, least: int,
        total: int,
    ) -> int:  # fmt: skip
        slack = max(self.slack_abs, self.slack_rel * least)
        best = 0
        best_key = (-1, 0, 0)
        for position in range(len(loads)):
            extra = matches[position] - floor
            load = loads[position]
            if load > least + slack * (1 + extra / total):
                continue
            key = (extra, -load, -indexes[position].requests)
            if key > best_key:
                best, best_key = position, key
        return best
