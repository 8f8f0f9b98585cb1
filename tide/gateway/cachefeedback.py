"""Correcting a replica's prefix index from the engine's own report of what it found cached (pure).

vLLM started with `--enable-prompt-tokens-details` (Tide's replicas are) says in each response's usage how
many prompt tokens it found in its prefix cache: `"prompt_tokens_details": {"cached_tokens": N}`. The
gateway's `PrefixIndex` predicted, when it routed the request, how many of the prompt's chunks the replica
held (`held`). A response whose cached tokens fall clearly short of that prediction shows the engine had
evicted names its index still held: its cache is smaller than the index (or it restarted, or its cache was
reset, at the same address, which the gateway cannot see otherwise).

What is corrected is the index's size, not the request's own names. The request itself just recomputed its
prompt, so the engine holds all of it again, most recently used: dropping its names would send the
conversation's next turn away from the one replica that now has its cache. What the shortfall tells is that
the engine's LRU keeps fewer names than the index: names as old as the missing one are gone, and the oldest
ones most surely. So the index is shrunk (by a quarter of what it holds, at least to `FLOOR` names) on each
shortfall, dropping its least recent names, and grows back (by a sixteenth, while full, up to the capacity it
started with) on each response that confirms the whole prediction (by SAMPLE_EVERY sixteenths once sampled,
below): a quarter down per shortfall, a sixteenth up per confirmation, so it settles near what the engine
keeps. (The response cannot say how old the missing names were, as the request's own routing moved them to the
index's recent end: a fixed step, over several responses, rather than one exact cut.)

Only clean observations count. A prediction may rest on names that a request still in flight on the same
replica was sent with (same prompt start, e.g. a burst of questions on one new document): the engine has
not computed them yet, and a shortfall says nothing about eviction. So a prediction is checked only when no
request with the same first chunk that brought names to the index was in flight on the replica when it was
sent (`sent`); chained names make the first chunk a witness for all of them. A request whose prompt the
index held whole brings nothing the engine has yet to compute (its names came with an earlier request), so
it is not counted in flight: a prompt repeated whole costs a dict lookup here, not an update at its send
and another at its end. An index cleared since the request was sent (the replica failed or moved: a new
engine) is not corrected by the old engine's answer.

Once the engine has confirmed `STEADY` predictions in a row, only one checkable prediction in
`SAMPLE_EVERY` is checked (the rest are sent unchecked: no response tail kept, no parse), until a
shortfall, which makes every one checked again. Checking is the feedback's whole cost on the gateway (a
checked response costs about 36k instructions in process: the tail, the usage parse, the mapping; the
request itself about 200k), and an index that keeps being confirmed has nothing to correct: a cache that
shrinks is still noticed, within about SAMPLE_EVERY times as many requests. The in-flight bookkeeping
(`sent`/`ended`) stays on every request that brings names, checked or not, as a sampled prediction is
clean only if none with its start was in flight.

A replica whose engine does not report cached tokens (an older vLLM, another engine, a stub) stops being
listened to after `SILENT_LIMIT` successful responses without them: no bookkeeping, and no response tail
kept for it, from then on.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from tide.gateway.prefix import BOUNDARIES, PrefixIndex

FLOOR = 32  # names an index is never shrunk below (a few conversations' worth)
DECREASE = 0.75  # on a shortfall the index keeps this share of what it holds
GROW_DIVISOR = 16  # on a confirmed prediction the capacity grows by capacity / GROW_DIVISOR
MARGIN = 0.25  # a chunk counts as confirmed with 25% fewer tokens than its bytes suggest...
BLOCK_TOKENS = 32  # ...less one engine block (vLLM caches whole blocks: 16 tokens on GPU, 32+ on CPU)
SILENT_LIMIT = 8  # successful responses without cached tokens before a replica is no longer listened to
STEADY = 16  # confirmations in a row after which predictions are sampled...
SAMPLE_EVERY = 16  # ...one checkable prediction in this many checked (until a shortfall; at 8, the checks
# cost more than counting only the requests that bring names saved: docs/ROUTING.md, "Sampled feedback")


class CacheFeedback:
    """One replica's engine reports, as they correct its prefix index."""

    __slots__ = ("ceiling", "confirmations", "corrections", "in_flight", "listening", "silent", "skipped", "streak")

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling  # the index's capacity at the start: it never grows beyond
        self.listening = True  # False once the engine answered SILENT_LIMIT times without cached tokens
        self.silent = 0
        self.corrections = 0  # responses that shrank the index
        self.confirmations = 0  # responses that confirmed the whole prediction
        self.streak = 0  # confirmations since the last shortfall: from STEADY on, predictions are sampled
        self.skipped = 0  # checkable predictions left unchecked since the last sampled one
        # First chunk name -> requests in flight on the replica with it that brought names (while listening).
        self.in_flight: dict[int, int] = {}

    def sent(self, first: int, held: int, total: int) -> int:
        """A prompt of `total` chunks starting with chunk name `first` was sent to the replica, whose index
        held `held` of them: the prediction to check at its response, 0 when there is none to check
        (nothing held; a request with the same start that brought names is in flight: they may not be
        computed yet; or the engine is steady and this one is not sampled). A request that brings names
        (`held < total`) is counted in flight until `ended(first)`; one held whole is not, and needs no
        `ended`."""
        in_flight = self.in_flight
        if held < total:
            count = in_flight.get(first, 0)
            in_flight[first] = count + 1
            if count or not held:
                return 0
        elif first in in_flight:
            return 0
        if self.streak >= STEADY:
            skipped = self.skipped + 1
            if skipped < SAMPLE_EVERY:
                self.skipped = skipped
                return 0
            self.skipped = 0
        return held

    def ended(self, first: int) -> None:
        """A request `sent` with chunk name `first` that brought names ended (answered, failed, cancelled
        or retried)."""
        in_flight = self.in_flight
        count = in_flight.get(first, 0) - 1
        if count > 0:
            in_flight[first] = count
        else:
            in_flight.pop(first, None)

    def observe(
        self, index: PrefixIndex, chunks: Sequence[int], held: int, requests_at_send: int, confirmed: int | None
    ) -> bool:
        """The response to a request whose index predicted `held` (> 0) of its `chunks` cached: the engine
        found `confirmed` of them cached (`confirmed_chunks`; None: the response reported no cached tokens).
        `requests_at_send`: the index's request count right after the request was routed. True when the
        index was shrunk."""
        if confirmed is None:
            self.silent += 1
            if self.silent >= SILENT_LIMIT:
                self.listening = False
                self.in_flight.clear()
            return False
        self.silent = 0
        if index.requests < requests_at_send or not index.match(chunks[:1]):
            return False  # cleared since it was sent (failed, moved): a new engine, not the one that answered
        if confirmed >= held:
            self.confirmations += 1
            # Once sampled, a confirmation stands for the SAMPLE_EVERY predictions it was drawn from: the
            # index grows back as fast per request as when every one was checked.
            weight = SAMPLE_EVERY if self.streak >= STEADY else 1
            self.streak += 1
            if len(index) >= index.capacity and index.capacity < self.ceiling:
                step = max(1, index.capacity // GROW_DIVISOR) * weight
                index.resize(min(self.ceiling, index.capacity + step))
            return False
        self.streak = 0
        shrunk = max(FLOOR, int(min(len(index), index.capacity) * DECREASE))
        if shrunk >= index.capacity:
            return False  # at the floor already
        index.resize(shrunk)
        self.corrections += 1
        return True


def confirmed_chunks(held: int, prompt_bytes: int, prompt_tokens: int, cached_tokens: int) -> int:
    """How many of the first `held` chunks the engine's `cached_tokens` cover, tokens mapped to bytes by
    the prompt's own ratio (`prompt_tokens` over `prompt_bytes`, the request's bytes from the prompt key on),
    with a margin: only a clear shortfall is one (the ratio varies along a prompt, the engine caches whole
    blocks and never the prompt's last token)."""
    if prompt_bytes <= 0 or prompt_tokens <= 0:
        return held  # nothing to map by: no correction
    # Chunk k is confirmed when cached_tokens >= BOUNDARIES[k-1] * tokens per byte * (1 - MARGIN) - BLOCK_TOKENS.
    covered = (cached_tokens + BLOCK_TOKENS) * prompt_bytes / (prompt_tokens * (1 - MARGIN))
    return bisect_right(BOUNDARIES, covered, 0, held)
