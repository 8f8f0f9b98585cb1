"""Prefix-cache-aware replica choice: which replica most likely holds a request's prompt prefix cached.

Pure: no I/O and no clock. The gateway and the routing simulator (`python -m tide.routesim`) run this code.

A prompt is cut into chunks of the request's own JSON bytes from its `"messages"` (or `"prompt"`) key on (no
tokenizing, no re-serializing; 384 bytes first, then to 1152, then each next one half as long as what precedes
it), and each chunk is named by a chained hash (the sum of the hashes of all chunks up to it; the first two
chunks hashed whole, each later one from its last 64 bytes), so one name stands for the whole prefix up to
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

import math
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate, pairwise, repeat
from operator import attrgetter, contains, itemgetter
from struct import Struct

from xxhash import xxh64_intdigest

CHUNK_BYTES = 384  # the first chunk: about 90 tokens of English text (vLLM's blocks are 16 tokens)
WHOLE_BYTES = 1152  # the second chunk ends here; up to here chunks are hashed whole, later ones by a window
MAX_PROMPT_BYTES = 1 << 20  # only the first MiB of a prompt is named
DEFAULT_INDEX_CHUNKS = 32_768  # names per replica (~1 MiB of memory); chunks average well above 1152 bytes


def _boundaries() -> tuple[int, ...]:
    # Chunks grow with the prefix they extend (past WHOLE_BYTES each is half of what precedes it): 6 names
    # for an 8 KiB prompt, 13 for 128 KiB, so the gateway's work per request stays small (naming costs
    # about 1k instructions a name: slicing, hashing, adding; touching it more), while the last name still
    # covers two thirds of the prompt. A prompt shorter than the first chunk is not named: what it could
    # share is at most about a hundred tokens of prefill. The first name ends at 384 bytes so that a chat
    # whose turns are short (a system prompt of a hundred-odd tokens, a few short turns) is named from its
    # first turn and its next turns follow it (with one first chunk of 1152 bytes, until 2026-12-03 evening,
    # such chats went unnamed for two or three turns, and the live bench lost the sessions sharing 2-5 of its
    # 213-byte blocks); the second ends at 1152 as before: one name more per request (docs/ROUTING.md).
    ends = [CHUNK_BYTES, WHOLE_BYTES]
    while ends[-1] < MAX_PROMPT_BYTES:
        ends.append((ends[-1] + ends[-1] // 2) // _STEP * _STEP)  # multiples of _STEP: see _COUNTS
    return tuple(ends)


_STEP = 64
BOUNDARIES = _boundaries()
MAX_CHUNKS = len(BOUNDARIES)
# How many chunks a prompt of n bytes has, by n // _STEP (n below MAX_PROMPT_BYTES): a lookup, cheaper
# than a bisection per request.
_COUNTS = bytes(bisect_right(BOUNDARIES, i * _STEP) for i in range(MAX_PROMPT_BYTES // _STEP))
WINDOW = 64
# The first two chunks (up to WHOLE_BYTES) are hashed whole; each later one is named by its last WINDOW
# bytes (and, chained, everything named before it), not by all its bytes: the gateway's work per request
# must stay small (docs/ROUTING.md, "Gateway cost"). Texts that diverge shift what follows, so the
# divergence is seen at the next window; what goes unseen is an edit outside the windows that keeps the
# length, followed by identical text (a routing estimate, not a cache key). Until 2026-12-03 a later chunk
# was named by 64 bytes evenly spaced over it: the same count of bytes hashed, but a strided copy costs a
# loop per byte, and the windows come out of one C call with the first chunks.
# The naming runs in one C call where the extension is built (`_names`, below); the Python fallback makes
# the same names with one `Struct.unpack_from` per request, copying out the first chunks and the windows
# (for the prompt's chunk count, from the prompt key's offset), then map, accumulate, tuple: each of
# those steps costs about as much as hashing a few hundred bytes.
# The hash is XXH64 (the `xxhash` package): about 1.8k instructions for the first 1152 bytes where Python's own
# `hash()` (SipHash-1-3) took 3.7k (docs/ROUTING.md, "Gateway cost"). Not XXH3, though it takes fewer
# (1.2k): on inputs over 240 bytes the package dispatches XXH3 to AVX-512 where the CPU has it, and the core
# slows around it (frequency licences): Python code right after it ran 8-9% slower, and the gateway's CPU
# per request was about 5% higher (bench/prefix/avx_penalty.py; docs/ROUTING.md, "Gateway cost").
# Seeded per process from Python's own hash secret, as `hash()` is: names a client cannot predict, so it
# cannot craft prompts whose names collide in the gateway's dicts (PYTHONHASHSEED fixes both, as the
# benches do).
_SEEDS = (hash(b"tide.gateway.prefix") & 0xFFFF_FFFF_FFFF_FFFF,) * MAX_CHUNKS  # one per chunk, for map


def _layout(count: int) -> str:
    """The `Struct` format that copies out what names a prompt's first `count` chunks: whole chunks up to
    WHOLE_BYTES, then each chunk's last WINDOW bytes."""
    parts = []
    for start, end in pairwise((0, *BOUNDARIES[:count])):
        parts.append(f"{end - start}s" if end <= WHOLE_BYTES else f"{end - WINDOW - start}x{WINDOW}s")
    return "".join(parts)


_GATHER: list[Callable[[bytes, int], tuple[bytes, ...]]] = [lambda data, offset: ()]
_GATHER += [Struct(_layout(count)).unpack_from for count in range(1, MAX_CHUNKS + 1)]


def _python_names(data: bytes, start: int, max_chunks: int) -> tuple[int, ...]:
    """The chained names of the whole chunks of `data[start:]`, at most `max_chunks`: the sum of the hashes
    of chunks 1..k (a prefix sum, in C) for chunk k."""
    length = len(data) - start
    if length < CHUNK_BYTES:  # too short to name (nothing worth routing by)
        return ()
    count = _COUNTS[length // _STEP] if length < MAX_PROMPT_BYTES else bisect_right(BOUNDARIES, length)
    if count > max_chunks:
        count = max_chunks
    return tuple(accumulate(map(xxh64_intdigest, _GATHER[count](data, start), _SEEDS)))


# The same names in one C call (tide/gateway/_prefixnames.c, built by `pip install` where a C compiler is):
# about 2.5k instructions for the bench's 8 KB prompts (6.3k with `prompt_chunks`' checks) where the
# Python above makes `prompt_chunks` 15.3k, most of it the calls' argument parsing and an object per part
# (docs/ROUTING.md, "Naming in C"). Without the module the Python names serve: the same names (modulo
# 2**64), the gateway's work per request a few percent higher.
try:
    from tide.gateway import _prefixnames
except ImportError:  # not built (no C compiler at install)
    NATIVE_NAMES = False
    _names: Callable[[bytes, int, int], tuple[int, ...]] = _python_names
else:
    _prefixnames.configure(BOUNDARIES, WHOLE_BYTES, WINDOW, _SEEDS[0])
    NATIVE_NAMES = True
    _names = _prefixnames.chained_names


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
    if start < 0:  # the key spelt with escapes: from the start
        start = 0
    return _names(raw, start, max_chunks)


def prompt_bytes(raw: bytes) -> int:
    """The bytes of a request body from its prompt key on: the length `prompt_chunks` cuts into chunks
    (off the hot path: the cache feedback maps the engine's cached tokens to chunks by it)."""
    start = raw.find(b'"messages"')
    if start < 0:
        start = raw.find(b'"prompt"')
    return len(raw) - max(start, 0)


def chain_chunks(data: bytes, max_chunks: int = MAX_CHUNKS) -> tuple[int, ...]:
    """Chained names of the whole chunks of `data` (chunk ends at BOUNDARIES): what `prompt_chunks` names
    from the prompt key on."""
    return _names(data, 0, max_chunks)


def chain_ids(ids: Sequence[int]) -> tuple[int, ...]:
    """Chained names for a sequence of block ids (the simulator's traces name blocks by id)."""
    names: list[int] = []
    name = 0
    for block in ids:
        name = hash((name, block))
        names.append(name)
    return tuple(names)


class PrefixTable:
    """One deployment's view of what its replicas hold: chunk name -> the bits of the replicas' indexes that
    hold it (one bit per replica, `index()`). The policy reads a request's match for every replica from a
    few lookups here (`PrefixAwarePolicy.place_shared`) instead of scanning each replica's index."""

    __slots__ = ("_free", "_next", "count", "full", "holders")

    def __init__(self) -> None:
        self.holders: dict[int, int] = {}  # name -> bits; only names some index holds
        self.full = 0  # the bits of all attached indexes
        self.count = 0  # how many are attached
        self._free: list[int] = []  # bits of detached indexes, reused
        self._next = 1

    def index(self, capacity: int = DEFAULT_INDEX_CHUNKS) -> PrefixIndex:
        """A new, empty index attached to this table."""
        index = PrefixIndex(capacity)
        self.attach(index)
        return index

    def attach(self, index: PrefixIndex) -> None:
        """Give a detached (or standalone) index a bit here; it starts empty."""
        index.detach()
        if self._free:
            bit = self._free.pop()
        else:
            bit, self._next = self._next, self._next << 1
        index.bit = bit
        index.table = self
        self.full |= bit
        self.count += 1

    def release(self, bit: int) -> None:
        self.full &= ~bit
        self.count -= 1
        self._free.append(bit)


class PrefixIndex:
    """A bounded LRU of the chunk names recently sent to one replica; when attached to its deployment's
    `PrefixTable`, the table's bits follow every name it takes in or drops."""

    __slots__ = ("_names", "bit", "capacity", "requests", "table", "touched")

    def __init__(self, capacity: int = DEFAULT_INDEX_CHUNKS) -> None:
        if capacity < 1:
            raise ValueError("a prefix index needs a capacity of at least 1 chunk")
        self.capacity = capacity
        self.requests = 0  # requests recorded since the replica (or its index) started
        self._names: OrderedDict[int, None] = OrderedDict()
        # Prompts sent here whole (all their names held) whose touch of the LRU order is not applied yet
        # (`insert` appends them, or the gateway's pick, inlined: requests += 1, append, apply at the batch):
        # a touch changes what is held only at the next eviction, and evicting needs new names, so the
        # touches wait until new names come (or TOUCH_BATCH of them) and are applied then, in order,
        # each prompt once (its last touch; the earlier ones change nothing after it). The order is the
        # same as touching at once; the work, for prompts repeated whole, a fraction.
        self.touched: list[Sequence[int]] = []
        self.table: PrefixTable | None = None
        self.bit = 0

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
        if chunks[-1] in names:
            return len(chunks)
        return _held_between(names, chunks)

    def insert(self, chunks: Sequence[int], held: int | None = None) -> None:
        """The replica was sent this prompt: its chunks become the most recent, its first chunk most of all
        (vLLM frees a request's blocks tail first); the least recent fall out. `held`: `match(chunks)`,
        when the caller knows it (the policy does)."""
        self.requests += 1
        if held is None:
            held = self.match(chunks)
        if held == len(chunks) and held:  # nothing new: the touch waits
            touched = self.touched
            touched.append(chunks)
            if len(touched) >= TOUCH_BATCH:
                self.apply_touches()
            return
        if self.touched:
            self.apply_touches()
        names = self._names
        table = self.table
        # C-level loops, no Python loop per chunk: the new tail (not held: the index is prefix-closed),
        # last chunk first, then the held head, moved to the end last chunk first.
        if held < len(chunks):
            new = chunks[: held - 1 if held else None : -1]
            if table is not None:
                holders, bit = table.holders, self.bit
                get = holders.get
                for name in new:
                    holders[name] = get(name, 0) | bit
            names.update(dict.fromkeys(new))
        if held:
            try:
                _drain(map(names.move_to_end, chunks[held - 1 :: -1]))
            except KeyError:  # not prefix-closed after all (a hash collision): touch one by one
                self._touch_one_by_one(chunks)
        if len(names) > self.capacity:
            self._evict(len(names) - self.capacity)

    def apply_touches(self) -> None:
        """Move the names of the waiting prompts to the end, oldest first, each prompt at its last touch (a
        prompt is told by its last name: the chain's)."""
        touched = self.touched
        latest = dict(zip(map(_LAST, reversed(touched)), reversed(touched), strict=True))
        touched.clear()
        move = self._names.move_to_end
        for chunks in reversed(latest.values()):
            try:
                _drain(map(move, reversed(chunks)))
            except KeyError:  # a name in the middle missing (a hash collision): touch one by one
                self._touch_one_by_one(chunks)

    def resize(self, capacity: int) -> None:
        """Hold at most `capacity` names from now on: the least recent beyond it are dropped now (after the
        waiting touches, which decide what is least recent). The engine's own reports of what it found
        cached shrink and grow it (tide/gateway/cachefeedback.py)."""
        if capacity < 1:
            raise ValueError("a prefix index needs a capacity of at least 1 chunk")
        self.capacity = capacity
        if len(self._names) > capacity:
            if self.touched:
                self.apply_touches()
            self._evict(len(self._names) - capacity)

    def _touch_one_by_one(self, chunks: Sequence[int]) -> None:
        names, table = self._names, self.table
        for name in reversed(chunks):
            if name not in names and table is not None:
                table.holders[name] = table.holders.get(name, 0) | self.bit
            names[name] = None
            names.move_to_end(name)
        if len(names) > self.capacity:
            self._evict(len(names) - self.capacity)

    def _evict(self, excess: int) -> None:
        names, table = self._names, self.table
        for _ in range(excess):
            name = names.popitem(last=False)[0]
            if table is not None:
                _drop_bit(table.holders, name, self.bit)

    def clear(self) -> None:
        table = self.table
        if table is not None:
            holders, bit = table.holders, self.bit
            for name in self._names:
                _drop_bit(holders, name, bit)
        self._names.clear()
        self.touched.clear()
        self.requests = 0

    def detach(self) -> None:
        """Leave the table (the replica left the deployment): empty, its bit free for another."""
        self.clear()
        if self.table is not None:
            self.table.release(self.bit)
        self.table = None
        self.bit = 0


def _drop_bit(holders: dict[int, int], name: int, bit: int) -> None:
    rest = holders[name] & ~bit
    if rest:
        holders[name] = rest
    else:
        del holders[name]


def _held_between(names: OrderedDict[int, None], chunks: Sequence[int]) -> int:
    """How many leading chunks `names` holds, given it holds the first and not the last."""
    low, high = 1, len(chunks) - 1  # chunks[:low] are held, chunks[high] is not
    while low < high:
        middle = (low + high) // 2
        if chunks[middle] in names:
            low = middle + 1
        else:
            high = middle
    return low


_drain: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend  # runs an iterator to its end, in C
_LAST = itemgetter(-1)
TOUCH_BATCH = 32  # prompts whose LRU touch may wait (PrefixIndex.touched)
_NAMES = attrgetter("_names")


@cache  # one table per setting: the gateway makes a policy per deployment at every routing table update
def _whole_limits(policy: PrefixAwarePolicy) -> tuple[int, ...]:
    return tuple(math.floor(policy.limit(least, 2)) for least in range(512))


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
    # `limit(least, 2)` (a replica holding the whole prompt) rounded down, for least = 0, 1, ... 511: loads
    # are ints, so `load <= whole_limits[least]` is the rule's test, without float arithmetic (the gateway's
    # common case, per request).
    whole_limits: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "whole_limits", _whole_limits(self))

    def limit(self, least: int, reach: float) -> float:
        """The most load a replica may carry when the least loaded carries `least`: `reach` = 1 + extra / chunks
        (1 for a replica holding no more than the one holding least, 2 for one holding the whole prompt)."""
        return least + max(self.slack_abs, self.slack_rel * least) * reach

    def choose(self, loads: Sequence[int], indexes: Sequence[PrefixIndex], chunks: Sequence[int]) -> int:
        """The position (in `loads`/`indexes`, one entry per allowed replica, at least one) to send to."""
        return self.place(loads, indexes, chunks)[0]

    def place(self, loads: Sequence[int], indexes: Sequence[PrefixIndex], chunks: Sequence[int]) -> tuple[int, int]:
        """`choose`, and how many leading chunks the chosen replica holds (for its `insert`)."""
        count = len(loads)
        if count == 1:
            return 0, indexes[0].match(chunks)
        if not chunks:  # no prompt to place
            return self._least_loaded(loads, indexes), 0
        # PrefixIndex.match for every replica; the common cases (each replica holds all of the prompt or
        # none of it) are told apart by C-level loops, as this runs per request.
        dicts = list(map(_NAMES, indexes))
        lasts = list(map(contains, dicts, repeat(chunks[-1])))
        if True in lasts:
            if False not in lasts:
                return self._least_loaded(loads, indexes), len(chunks)  # everyone holds it all
            if lasts.count(True) == 1 and sum(map(contains, dicts, repeat(chunks[0]))) == 1:
                # one holds it all, the others none of it
                chosen = lasts.index(True)
                least = min(loads)
                if loads[chosen] <= self.limit(least, 2):
                    return chosen, len(chunks)
        elif True not in map(contains, dicts, repeat(chunks[0])):
            return self._least_loaded(loads, indexes), 0  # nobody holds any of it
        first, last, total = chunks[0], chunks[-1], len(chunks)
        matches = [
            (total if last in names else _held_between(names, chunks)) if first in names else 0 for names in dicts
        ]
        return self._decide(loads, indexes, total, matches)

    def place_shared(
        self, table: PrefixTable, loads: Sequence[int], indexes: Sequence[PrefixIndex], chunks: Sequence[int]
    ) -> tuple[int, int]:
        """`place` for indexes attached to `table` (one deployment's replicas): the same choice, told from
        the bits of the table's entries for the prompt's first and last chunks in the common cases."""
        count = len(loads)
        if count == 1:
            return 0, indexes[0].match(chunks)
        if not chunks:
            return self._least_loaded(loads, indexes), 0
        allowed = table.full if count == table.count else sum([index.bit for index in indexes])
        get = table.holders.get
        last = get(chunks[-1], 0) & allowed
        if last == allowed:
            return self._least_loaded(loads, indexes), len(chunks)  # everyone holds it all
        first = get(chunks[0], 0) & allowed
        if not first:
            return self._least_loaded(loads, indexes), 0  # nobody holds any of it
        if first == last and not last & (last - 1):  # one holds it all, the others none of it
            chosen = [index.bit for index in indexes].index(last)
            least = min(loads)
            if loads[chosen] <= self.limit(least, 2):
                return chosen, len(chunks)
        return self._decide(loads, indexes, len(chunks), [index.match(chunks) for index in indexes])

    def _decide(
        self, loads: Sequence[int], indexes: Sequence[PrefixIndex], total: int, matches: list[int]
    ) -> tuple[int, int]:
        """The rule, from every replica's match (how many of the prompt's `total` chunks it holds)."""
        count = len(loads)
        floor = min(matches)  # what every replica holds (a shared system prompt) does not set them apart
        top = max(matches)
        least = min(loads)
        if top > floor:
            # The replicas holding the most, while within the load slack for what they hold extra.
            limit = self.limit(least, 1 + (top - floor) / total)
            chosen = min([(loads[p], indexes[p].requests, p) for p in range(count) if matches[p] == top])[2]
            if loads[chosen] > limit:  # the best-placed are too busy: the rest by extra held, then load
                chosen = self._by_extra(loads, indexes, matches, floor, least, total)
            return chosen, matches[chosen]
        return self._least_loaded(loads, indexes), top

    @staticmethod
    def _least_loaded(loads: Sequence[int], indexes: Sequence[PrefixIndex]) -> int:
        """Nobody holds more than the others: least loaded, then fewest sent, then first."""
        least = min(loads)
        if loads.count(least) == 1:  # the common case, told in C
            return loads.index(least)
        best = 0
        for position in range(1, len(loads)):
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
