"""The engine's reports of cached prompt tokens correct a replica's prefix index (tide/gateway/cachefeedback.py):
a clear shortfall shrinks the index (its least recent names go), a confirmation changes nothing (or grows a
shrunk index back), no report changes nothing, and an index cleared since the request was sent is left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import deployment, run, running_gateway, table, upstreams, url
from tide.gateway.cachefeedback import (
    FLOOR,
    SAMPLE_EVERY,
    SILENT_LIMIT,
    STEADY,
    CacheFeedback,
    confirmed_chunks,
)
from tide.gateway.prefix import BOUNDARIES, PrefixIndex, chain_ids, prompt_bytes
from tide.gateway.usage import usage_cached
from tide.spec.routing import PREFIX_AWARE

TOKENS_PER_BYTE = 0.25
PROMPT_BYTES = 20_000  # named in 8 chunks (BOUNDARIES up to 19,392... see `CHUNKS`)
CHUNKS = sum(1 for end in BOUNDARIES if end <= PROMPT_BYTES)


def tokens_up_to(chunks: int) -> int:
    """The tokens an engine holding the first `chunks` chunks reports cached (whole 16-token blocks)."""
    return int(BOUNDARIES[chunks - 1] * TOKENS_PER_BYTE) // 16 * 16 if chunks else 0


def report(cached_chunks: int) -> tuple[int, int, int]:
    """A response's report when the engine held `cached_chunks` chunks: (prompt bytes, tokens, cached)."""
    return PROMPT_BYTES, int(PROMPT_BYTES * TOKENS_PER_BYTE), tokens_up_to(cached_chunks)


@pytest.mark.parametrize("held", [1, 3, CHUNKS])
def test_cached_tokens_map_to_the_chunks_they_cover(held: int) -> None:
    for cached in range(held + 1):
        assert confirmed_chunks(held, *report(cached)) == cached
    assert confirmed_chunks(held, *report(CHUNKS)) == held  # more than predicted: all of it
    assert confirmed_chunks(held, PROMPT_BYTES, 0, 0) == held  # no token count to map by: no shortfall


def conversations(count: int) -> list[tuple[int, ...]]:
    """`count` prompts of CHUNKS names each, sharing nothing."""
    return [chain_ids([1000 * n + k for k in range(CHUNKS)]) for n in range(count)]


def loaded_index(prompts: list[tuple[int, ...]], capacity: int = 10_000) -> tuple[PrefixIndex, CacheFeedback]:
    index = PrefixIndex(capacity)
    for prompt in prompts:
        index.insert(prompt)
    return index, CacheFeedback(index.capacity)


def exchange(
    index: PrefixIndex, feedback: CacheFeedback, prompt: tuple[int, ...], reported: tuple[int, int, int] | None
) -> tuple[int, bool]:
    """The gateway's path for one request: routed (predicted), sent, answered with `reported`. Returns the
    prediction sent to be checked (0: unchecked) and whether the response shrank the index."""
    held = index.match(prompt)
    index.insert(prompt, held)
    predicted = feedback.sent(prompt[0], held, len(prompt))
    sent_requests = index.requests
    confirmed = None if reported is None else confirmed_chunks(predicted, *reported)
    try:
        return predicted, predicted > 0 and feedback.observe(index, prompt, predicted, sent_requests, confirmed)
    finally:
        if held < len(prompt):  # it brought names: counted in flight
            feedback.ended(prompt[0])


def answer(
    index: PrefixIndex, feedback: CacheFeedback, prompt: tuple[int, ...], reported: tuple[int, int, int] | None
) -> bool:
    """`exchange`: whether the response shrank the index."""
    return exchange(index, feedback, prompt, reported)[1]


def checked(
    index: PrefixIndex, feedback: CacheFeedback, prompt: tuple[int, ...], reported: tuple[int, int, int]
) -> bool:
    """`exchange`: whether the prediction was checked."""
    return exchange(index, feedback, prompt, reported)[0] > 0


# (engine reports, as chunks of the prompt cached; None: no cached tokens in the usage) -> shrinks?
CASES = [
    pytest.param(0, True, id="nothing cached: shortfall"),
    pytest.param(CHUNKS // 2, True, id="half cached: shortfall"),
    pytest.param(CHUNKS - 1, True, id="all but the last chunk: shortfall"),
    pytest.param(CHUNKS, False, id="all cached: confirmed"),
    pytest.param(None, False, id="no report"),
]


@pytest.mark.parametrize(("cached", "shrinks"), CASES)
def test_a_clear_shortfall_shrinks_the_index_from_its_least_recent_names(cached: int | None, shrinks: bool) -> None:
    prompts = conversations(12)
    index, feedback = loaded_index(prompts)
    before = len(index)
    newest = prompts[-1]
    shrunk = answer(index, feedback, newest, None if cached is None else report(cached))
    assert shrunk is shrinks
    assert feedback.corrections == int(shrinks)
    if shrinks:
        assert len(index) == index.capacity == int(before * 0.75)
        assert index.match(prompts[0]) == 0  # the oldest conversation is forgotten: routed as new
        assert index.match(newest) == CHUNKS  # the one just answered was recomputed: the engine holds it
    else:
        assert len(index) == before and index.capacity == 10_000
        assert all(index.match(prompt) == CHUNKS for prompt in prompts)


@pytest.mark.parametrize("capacity", [100, 10_000])
def test_repeated_shortfalls_shrink_to_the_floor_and_confirmations_grow_back(capacity: int) -> None:
    prompts = conversations(20)
    index, feedback = loaded_index(prompts, capacity)
    for _ in range(30):
        answer(index, feedback, prompts[-1], report(0))
    assert index.capacity == FLOOR and len(index) <= FLOOR
    assert index.match(prompts[-1]) == CHUNKS
    # The engine now keeps everything: a conversation returns (confirmed) between new ones (which fill
    # the index: it grows only when full).
    capacities = [index.capacity]
    for new in conversations(400)[20:]:
        answer(index, feedback, new, report(0))  # nothing predicted, nothing checked
        answer(index, feedback, prompts[-1], report(CHUNKS))
        capacities.append(index.capacity)
    assert capacities == sorted(capacities)  # never shrinks
    # Grows while full, as the names come (here 8 per confirmation), up to where it started.
    assert capacities[-1] >= min(capacity, 2000)
    assert capacities[-1] <= feedback.ceiling == capacity


def test_a_prediction_resting_on_a_request_still_in_flight_is_not_checked() -> None:
    """A burst on one new document: the second request's prediction rests on names the engine is still
    computing for the first; its shortfall is no eviction. Requests held whole bring nothing to compute:
    they are not counted in flight, and a later prediction need not wait for them."""
    prompt = conversations(1)[0]
    index, feedback = loaded_index([])
    index.insert(prompt)
    assert feedback.sent(prompt[0], 0, CHUNKS) == 0  # the first brings the names: nothing held to check
    assert feedback.sent(prompt[0], CHUNKS, CHUNKS) == 0  # the second, while the first is in flight
    assert feedback.sent(prompt[0], CHUNKS, CHUNKS) == 0  # and a third
    feedback.ended(prompt[0])  # the first ended (the others, held whole, were not counted)
    assert feedback.in_flight == {}
    assert feedback.sent(prompt[0], CHUNKS, CHUNKS) == CHUNKS  # the engine has computed them: checked
    # A later turn of the same chat brings a name: in flight, it makes the next prediction unclean again.
    longer = (*prompt, 99)
    assert feedback.sent(longer[0], CHUNKS, CHUNKS + 1) == CHUNKS  # checked: only held names are predicted
    assert feedback.sent(prompt[0], CHUNKS, CHUNKS) == 0
    feedback.ended(longer[0])
    assert feedback.in_flight == {}


def test_once_the_engine_keeps_confirming_only_a_sample_is_checked_until_a_shortfall() -> None:
    """Checking costs the gateway a response parse; an index the engine keeps confirming is checked one
    prediction in SAMPLE_EVERY, and a lost cache is still noticed within that many requests, after which
    every prediction is checked again."""
    prompts = conversations(4)
    index, feedback = loaded_index(prompts)
    # Every clean prediction is checked until the engine is steady, then one in SAMPLE_EVERY.
    assert all(checked(index, feedback, prompts[n % 4], report(CHUNKS)) for n in range(STEADY))
    sampled = [checked(index, feedback, prompts[n % 4], report(CHUNKS)) for n in range(4 * SAMPLE_EVERY)]
    assert sum(sampled) == 4 and sampled[SAMPLE_EVERY - 1]
    # The engine loses its cache: the next sampled response shrinks the index.
    before = index.capacity
    shrunk_after = next(n for n in range(1, SAMPLE_EVERY + 1) if answer(index, feedback, prompts[n % 4], report(0)))
    assert shrunk_after <= SAMPLE_EVERY and index.capacity < before
    # From the shortfall on, every clean prediction is checked again.
    assert all(checked(index, feedback, prompts[0], report(0)) for _ in range(3))


def test_a_sampled_prediction_still_waits_for_requests_in_flight_with_its_start() -> None:
    prompts = conversations(2)
    index, feedback = loaded_index(prompts)
    for n in range(STEADY):
        answer(index, feedback, prompts[n % 2], report(CHUNKS))
    first = prompts[0][0]
    # A request that brings names (a later turn) is counted in flight, sampled or not...
    feedback.sent(first, CHUNKS, CHUNKS + 1)
    # ...so no prediction with its start is checked while it is out, whichever the sample would take.
    assert [feedback.sent(first, CHUNKS, CHUNKS) for _ in range(2 * SAMPLE_EVERY)] == [0] * (2 * SAMPLE_EVERY)
    feedback.ended(first)
    assert feedback.in_flight == {}
    # Once it ended, the sample takes one of the next SAMPLE_EVERY again.
    assert sum(feedback.sent(first, CHUNKS, CHUNKS) > 0 for _ in range(SAMPLE_EVERY)) == 1


def test_an_index_cleared_since_the_request_was_sent_is_not_corrected() -> None:
    """The replica failed (or moved) while the request was out: its index restarted empty, for a new
    engine; the old engine's answer says nothing about it."""
    prompts = conversations(12)
    index, feedback = loaded_index(prompts)
    newest = prompts[-1]
    held = index.match(newest)
    index.insert(newest, held)
    predicted, sent_requests = feedback.sent(newest[0], held, len(newest)), index.requests
    index.clear()
    for prompt in prompts[:3]:  # the restarted replica gets new requests before the old answer arrives
        index.insert(prompt)
    before = len(index)
    assert not feedback.observe(index, newest, predicted, sent_requests, confirmed_chunks(predicted, *report(0)))
    assert len(index) == before and index.capacity == 10_000 and feedback.corrections == 0


def test_an_engine_that_never_reports_cached_tokens_is_no_longer_listened_to() -> None:
    prompts = conversations(3)
    index, feedback = loaded_index(prompts)
    for n in range(SILENT_LIMIT):
        assert feedback.listening
        answer(index, feedback, prompts[n % 3], None)
    assert not feedback.listening
    assert len(index) == 3 * CHUNKS and feedback.corrections == 0


def test_a_report_resets_the_silence_count() -> None:
    prompts = conversations(3)
    index, feedback = loaded_index(prompts)
    for n in range(3 * SILENT_LIMIT):
        answer(index, feedback, prompts[n % 3], None if n % SILENT_LIMIT else report(CHUNKS))
    assert feedback.listening


VLLM_CHAT_TAIL = (
    b'"finish_reason":"stop"}],"service_tier":null,"system_fingerprint":null,"usage":{"prompt_tokens":2005,'
    b'"total_tokens":2009,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":1984,'
    b'"created_cache_tokens":null,"multimodal_tokens":null}},"prompt_logprobs":null,"kv_transfer_params":null}'
)
VLLM_STREAM_TAIL = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":37,"total_tokens":41,"completion_tokens":4,"prompt_tokens_details":'
    b'{"cached_tokens":0}}}\n\ndata: [DONE]\n\n'
)


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param(VLLM_CHAT_TAIL, (2005, 1984), id="vllm chat completion"),
        pytest.param(VLLM_STREAM_TAIL, (37, 0), id="vllm stream, nothing cached"),
        pytest.param(
            b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":'
            b'{"cached_tokens":null}}}',
            None,
            id="null",
        ),
        pytest.param(b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}', None, id="no details"),
        pytest.param(b'{"choices":[]}', None, id="no usage"),
    ],
)
def test_cached_tokens_are_read_from_the_usage_at_the_tail(tail: bytes, expected: tuple[int, int] | None) -> None:
    assert usage_cached(tail) == expected


def test_the_prompt_is_measured_from_its_key() -> None:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 100}], "max_tokens": 4})
    assert prompt_bytes(body) == len(body) - body.index(b'"messages"')
    completion = orjson.dumps({"model": "m", "prompt": "y" * 100})
    assert prompt_bytes(completion) == len(completion) - completion.index(b'"prompt"')


def turn(conversation: int, turns: int) -> dict[str, Any]:
    """Turn `turns` of a chat on its own ~16 KB document: each turn resends the ones before it."""
    document = f"Document {conversation}: " + f"the text of document {conversation}, line after line. " * 300
    messages: list[dict[str, str]] = [{"role": "system", "content": document}]
    for n in range(turns):
        messages += [{"role": "user", "content": f"question {n}?"}, {"role": "assistant", "content": f"answer {n}"}]
    messages.append({"role": "user", "content": f"question {turns}?"})
    return {"model": "tiny", "messages": messages, "max_tokens": 4}


def engine_usage(cached: str) -> Callable[[Any], dict[str, Any]]:
    """A stub engine's usage: `cached` "nothing" (its cache was lost) or "all" (all but the last token)."""

    def usage(body: Any) -> dict[str, Any]:
        prompt_tokens = len(orjson.dumps(body)) // 4
        cached_tokens = 0 if cached == "nothing" else prompt_tokens - 1
        return {
            "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + 3, "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        }  # fmt: skip

    return usage


def second_turn_of_the_oldest(cached: str) -> tuple[str, str, int]:
    """16 chats start on two replicas (they alternate); the newest chat on the replica the first one went
    to comes back and the engine reports `cached`; then the first chat comes back. Returns where the first
    chat went each time, and how many responses corrected that replica's index (as the gateway's load
    snapshot reports it to the controller's /metrics)."""

    async def scenario() -> tuple[str, str, int]:
        fakes = (FakeUpstream("a", usage=engine_usage(cached)), FakeUpstream("b", usage=engine_usage(cached)))
        async with upstreams(*fakes) as (a, b):
            routes = table(deployment("tiny", [a, b], routing=PREFIX_AWARE))
            async with running_gateway(routes) as gw, httpx.AsyncClient(timeout=10) as http:

                async def send(body: dict[str, Any]) -> str:
                    response = await http.post(url(gw), json=body)
                    assert response.status_code == 200
                    return response.headers["x-replica"]

                served = [await send(turn(c, 0)) for c in range(16)]
                first = served[0]
                newest = max(c for c in range(16) if served[c] == first)
                assert await send(turn(newest, 1)) == first  # it sticks, and the engine reports
                then = await send(turn(0, 1))
                return first, then, gw.load_snapshot()["tiny"].prefix_corrections.get(first, 0)

    return run(scenario())


def test_after_the_engine_reports_a_lost_cache_old_chats_are_routed_by_load() -> None:
    """The engine kept nothing of what the index predicted: the replica's index shrinks, the oldest chats
    fall out of it and their next turn is routed as new (by load: to the replica sent fewer requests).
    Where the engine confirms its cache, the same chat sticks to its replica."""
    first, then, corrections = second_turn_of_the_oldest("nothing")
    assert corrections == 1
    assert then != first
    first, then, corrections = second_turn_of_the_oldest("all")
    assert corrections == 0
    assert then == first
