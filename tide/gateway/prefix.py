"""Prefix-cache-aware replica choice: which replica most likely holds a request's prompt prefix cached.

Pure: no I/O and no clock. The gateway and the routing simulator (`python -m tide.routesim`) run this code.

A prompt is cut into fixed-size chunks (`CHUNK_BYTES` of its JSON text, no tokenizing) and each chunk is
named by a chained hash (the hash of the previous name and the chunk), so one name stands for the whole
prefix up to that chunk, as vLLM names its KV blocks. Each replica keeps a bounded LRU of the names of the
chunks recently sent to it (`PrefixIndex`): it mirrors the engine's own LRU block cache, so what the engine
has likely evicted is forgotten here too, and memory per replica is bounded. A replica that restarts or
fails gets an empty index.

The choice (`PrefixAwarePolicy.choose`): among the replicas the caller allows, those whose load is close
enough to the least loaded's (the more of the prompt a replica holds, the more load it may carry) are
eligible; of those, the one holding the longest prefix wins, ties to the less loaded and then to the one
sent fewer requests (new conversations spread evenly, so each cache holds its share). When no replica
holds more than what every replica holds (a shared system prompt), it is plain least-loaded routing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

CHUNK_BYTES = 256  # about 64 tokens of English text; vLLM's blocks are 16 tokens, so a chunk spans ~4
MAX_CHUNKS = 512  # the first 128 KiB of a prompt decide; bounds the gateway's work per request
DEFAULT_INDEX_CHUNKS = 32_768  # per replica: 8 MiB of prompt text, ~2M tokens: above most KV caches


def prompt_chunks(body: object, chunk_bytes: int = CHUNK_BYTES, max_chunks: int = MAX_CHUNKS) -> tuple[int, ...]:
    """The chained chunk names of an OpenAI request body's prompt (`messages`, else `prompt`); () if none.

    The messages are serialized as sent (orjson, C speed): turn k+1 of a chat resends turn k's messages
    first, so its text starts with turn k's text, except the closing bracket, which falls in the last,
    partial chunk that is never named (the engine caches only whole blocks too).
    """
    if not isinstance(body, dict):
        return ()
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        data = orjson.dumps(messages)
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            data = prompt.encode()
        elif isinstance(prompt, list) and prompt:
            data = orjson.dumps(prompt)
        else:
            return ()
    return chain_chunks(data, chunk_bytes, max_chunks)


def chain_chunks(data: bytes, chunk_bytes: int = CHUNK_BYTES, max_chunks: int = MAX_CHUNKS) -> tuple[int, ...]:
    count = min(len(data) // chunk_bytes, max_chunks)
    names: list[int] = []
    name = 0
    for start in range(0, count * chunk_bytes, chunk_bytes):
        name = hash((name, data[start : start + chunk_bytes]))
        names.append(name)
    return tuple(names)


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
        """How many leading chunks of the prompt this replica likely holds."""
        names = self._names
        matched = 0
        for name in chunks:
            if name not in names:
                break
            matched += 1
        return matched

    def insert(self, chunks: Sequence[int]) -> None:
        """The replica was sent this prompt: its chunks become the most recent; the oldest fall out."""
        self.requests += 1
        names = self._names
        for name in chunks:
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
        least = min(loads)
        slack = max(self.slack_abs, self.slack_rel * least)
        matches = [index.match(chunks) for index in indexes] if chunks else [0] * count
        floor = min(matches)  # what every replica holds (a shared system prompt) does not set them apart
        total = len(chunks) or 1
        best = 0
        best_key = (-1, 0, 0)
        for position in range(count):
            extra = matches[position] - floor
            load = loads[position]
            if load > least + slack * (1 + extra / total):
                continue
            key = (extra, -load, -indexes[position].requests)
            if key > best_key:
                best, best_key = position, key
        return best
