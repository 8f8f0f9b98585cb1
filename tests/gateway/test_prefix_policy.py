"""The prefix-aware policy, pure: chunk naming, the bounded per-replica index, and the choice."""

from __future__ import annotations

import random
from collections import OrderedDict

import orjson
import pytest

from tide.gateway import prefix
from tide.gateway.prefix import (
    BOUNDARIES,
    CHUNK_BYTES,
    PrefixAwarePolicy,
    PrefixIndex,
    chain_chunks,
    chain_ids,
    prompt_chunks,
)

SYSTEM = "You are a careful assistant. " * 40  # ~1.2 KB: the first chunk


def chat(*turns: str) -> dict[str, object]:
    messages = [{"role": "system", "content": SYSTEM}]
    messages += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"model": "m", "messages": messages}


def chunks_of(body: object) -> tuple[int, ...]:
    return prompt_chunks(orjson.dumps(body), body)


@pytest.fixture(params=["native", "python"])
def naming(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The naming tests run with the C names (where built) and with the Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(prefix, "_names", prefix._python_names)
    elif not prefix.NATIVE_NAMES:
        pytest.skip("the C names are not built here (tide/gateway/_prefixnames.c)")


def index_holding(*bodies: dict[str, object], capacity: int = 1000) -> PrefixIndex:
    index = PrefixIndex(capacity)
    for body in bodies:
        index.insert(chunks_of(body))
    return index


def test_a_later_turn_of_a_chat_starts_with_the_names_of_the_earlier_turn(naming: None) -> None:
    first = chunks_of(chat("a question " * 200))
    second = chunks_of(chat("a question " * 200, "an answer " * 200, "a follow-up"))
    assert len(first) >= 3
    assert len(second) > len(first)
    assert second[: len(first)] == first
    other = chunks_of(chat("another question " * 200))
    assert other[:1] == first[:1]  # the shared system prompt
    assert other[len(first) - 1] != first[-1]


@pytest.mark.parametrize(
    ("body", "expected_chunks"),
    [
        ({"prompt": "x" * (BOUNDARIES[2] + 10)}, 3),  # the partial tail is never named
        ({"prompt": "x" * (CHUNK_BYTES - 20)}, 0),
        ({"prompt": ["x" * BOUNDARIES[1]]}, 2),
        ({"messages": []}, 0),
        ({"input": "embeddings have no prompt"}, 0),
        ("not a dict", 0),
    ],
)
def test_prompt_chunks_by_body_shape(body: object, expected_chunks: int, naming: None) -> None:
    assert len(chunks_of(body)) == expected_chunks


def test_names_do_not_depend_on_where_the_prompt_key_starts(naming: None) -> None:
    text = "".join(chr(ord("a") + (i * 7919) % 26) for i in range(9000))  # differs throughout
    for pad in (0, 1, 50, 200, 300):  # fields before the key, short and long
        body = {"model": "m" * pad, "messages": [{"role": "user", "content": text}]}
        raw = orjson.dumps(body)
        expected = chain_chunks(raw[raw.find(b'"messages"') :])
        assert len(expected) == 7  # 384, 1152, 1728, 2560, 3840, 5760, 8640 bytes
        assert prompt_chunks(raw, body) == expected
        assert prompt_chunks(raw, body, max_chunks=3) == expected[:3]


def test_prompts_that_diverge_after_the_first_chunk_share_names_only_up_to_the_divergence(naming: None) -> None:
    """The first two chunks are hashed whole: any edit in them is seen there. Later chunks are named by a
    window of their bytes: a divergence that shifts the text is seen at the next window, and so is a
    same-length edit inside a window."""
    text = "".join(chr(ord("a") + (i * 7919) % 26) for i in range(9000))
    base = prompt_chunks(orjson.dumps({"prompt": text}), {"prompt": text})
    in_first = "#" + text[1:]
    in_second = text[:600] + "#" + text[601:]  # the second chunk is 384-1152 bytes from the key
    inserted = text[:3000] + "xyz" + text[3000:]  # in the fifth chunk (2560-3840 bytes)
    edited = text[: BOUNDARIES[4] - 20] + "#" + text[BOUNDARIES[4] - 19 :]  # in the fifth chunk's window
    for other, diverges_at in ((in_first, 0), (in_second, 1), (inserted, 4), (edited, 4)):
        names = prompt_chunks(orjson.dumps({"prompt": other}), {"prompt": other})
        assert names[:diverges_at] == base[:diverges_at]
        assert all(a != b for a, b in zip(names[diverges_at:], base[diverges_at:], strict=True))


def test_a_prompt_is_named_up_to_its_last_whole_chunk_at_any_length(naming: None) -> None:
    """The gateway counts chunks by a table lookup; a chunk is named only once the prompt covers it."""
    for end in BOUNDARIES[:8]:
        for length in (end - 1, end, end + 1):  # bytes from the prompt key on
            text = "z" * (length - len('"prompt":"') - len('"}'))
            raw = orjson.dumps({"prompt": text})
            assert len(raw) - raw.find(b'"prompt"') == length
            whole = sum(1 for boundary in BOUNDARIES if boundary <= length)
            assert len(prompt_chunks(raw, {"prompt": text})) == whole, (end, length)


def test_chunks_are_capped_so_a_huge_prompt_costs_bounded_work(naming: None) -> None:
    assert len(chain_chunks(b"y" * (CHUNK_BYTES * 50), max_chunks=8)) == 8


def test_index_forgets_the_least_recently_sent_beyond_its_capacity() -> None:
    index = PrefixIndex(capacity=6)
    old, new = chain_ids([1, 2, 3, 4]), chain_ids([5, 6, 7, 8])  # 4 chunks each
    index.insert(old)
    assert index.match(old) == 4
    index.insert(new)  # 8 names into 6: the two least recent of `old` go, its tail (as vLLM evicts)
    assert len(index) == 6
    assert index.match(new) == 4
    assert index.match(old) == 2
    index.insert(chain_ids([9, 10, 11]))  # 3 more: the rest of `old` goes
    assert index.match(old) == 0
    index.clear()
    assert index.match(new) == 0 and index.requests == 0


def test_what_an_index_keeps_is_exactly_an_lru_touched_tail_first_with_prompts_repeated_whole() -> None:
    """Touches of prompts held whole wait (PrefixIndex.touched) and are applied in a batch; what the index
    forgets must be what a plain LRU, touched at once, forgets."""
    rng = random.Random(5)
    conversations = [[rng.randrange(20) for _ in range(rng.randrange(1, 8))] for _ in range(12)]
    index = PrefixIndex(capacity=25)
    reference: OrderedDict[int, None] = OrderedDict()
    for _ in range(3000):
        conversation = rng.choice(conversations)
        chunks = chain_ids(conversation[: rng.randrange(1, len(conversation) + 1)])
        index.insert(chunks)
        for name in reversed(chunks):  # tail first: the first chunk is the most recent
            reference[name] = None
            reference.move_to_end(name)
        while len(reference) > 25:
            reference.popitem(last=False)
        assert set(index._names) == set(reference)
    assert index.requests == 3000


LONG = chat("the same long document " * 80)
A_LONG, B_NONE, C_NONE = 0, 1, 2


@pytest.mark.parametrize(
    ("case", "loads", "holders", "expected"),
    [
        ("holder wins at equal load", [0, 0, 0], [A_LONG], A_LONG),
        ("holder wins a little busier", [3, 0, 0], [A_LONG], A_LONG),
        ("holder too busy: least loaded instead", [12, 0, 1], [A_LONG], B_NONE),
        ("nobody holds it: least loaded", [2, 1, 0], [], C_NONE),
        ("everyone holds it: least loaded", [2, 1, 0], [A_LONG, B_NONE, C_NONE], C_NONE),
        ("two holders: the less loaded", [2, 1, 0], [A_LONG, B_NONE], B_NONE),
    ],
)
def test_choice(case: str, loads: list[int], holders: list[int], expected: int) -> None:
    indexes = [index_holding(LONG) if i in holders else PrefixIndex(1000) for i in range(3)]
    chosen = PrefixAwarePolicy().choose(loads, indexes, chunks_of(LONG))
    assert chosen == expected, case


def test_a_request_without_prompt_chunks_goes_to_the_least_loaded() -> None:
    indexes = [index_holding(LONG), PrefixIndex(1000), PrefixIndex(1000)]
    assert PrefixAwarePolicy().place([1, 0, 2], indexes, ()) == (1, 0)


def test_the_longer_cached_prefix_wins() -> None:
    turn1 = chat("q1 " * 200)
    turn2 = chat("q1 " * 200, "a1 " * 200, "q2 " * 200)
    indexes = [index_holding(turn1), index_holding(turn2), PrefixIndex(1000)]
    turn3 = chat("q1 " * 200, "a1 " * 200, "q2 " * 200, "a2", "q3")
    assert PrefixAwarePolicy().choose([1, 1, 0], indexes, chunks_of(turn3)) == 1


def test_unrelated_prompts_spread_over_idle_replicas() -> None:
    policy = PrefixAwarePolicy()
    indexes = [PrefixIndex(1000) for _ in range(4)]
    chosen = []
    for n in range(8):
        chunks = chunks_of({"messages": [{"role": "user", "content": f"conversation {n} " * 50}]})
        position = policy.choose([0, 0, 0, 0], indexes, chunks)
        indexes[position].insert(chunks)
        chosen.append(position)
    assert sorted(chosen) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_shared_system_prompt_stays_on_its_replica_until_it_is_busier_than_the_slack() -> None:
    policy = PrefixAwarePolicy(slack_abs=4, slack_rel=0.5)
    indexes = [PrefixIndex(1000) for _ in range(2)]
    loads = [0, 0]
    chosen = []
    for n in range(12):  # none finishes
        chunks = chunks_of(chat(f"conversation {n} " * 50))
        position = policy.choose(loads, indexes, chunks)
        indexes[position].insert(chunks)
        loads[position] += 1
        chosen.append(position)
    assert chosen[:5] == [0] * 5  # the holder of the system prompt, while within the slack
    assert 1 in chosen  # then the other one, which now holds it too
    assert max(loads) - min(loads) <= 8


def test_a_hot_prefix_does_not_pile_on_one_replica_while_others_idle() -> None:
    policy = PrefixAwarePolicy(slack_abs=4, slack_rel=0.5)
    indexes = [PrefixIndex(1000) for _ in range(3)]
    loads = [0, 0, 0]
    chunks = chunks_of(LONG)
    for _ in range(60):  # none finishes: load only grows
        position = policy.choose(loads, indexes, chunks)
        indexes[position].insert(chunks)
        loads[position] += 1
    assert max(loads) - min(loads) <= 2 * 4 + 1, loads  # at most twice the slack ahead
    assert min(loads) > 0


def reference_choice(
    policy: PrefixAwarePolicy, loads: list[int], indexes: list[PrefixIndex], chunks: tuple[int, ...]
) -> int:
    """The rule as docs/ROUTING.md states it, one replica at a time (what `place` computes with shortcuts)."""
    matches = [index.match(chunks) for index in indexes]
    floor, top, least = min(matches), max(matches), min(loads)
    by_load = sorted(range(len(loads)), key=lambda p: (loads[p], indexes[p].requests, p))
    if top == floor:
        return by_load[0]
    slack = max(policy.slack_abs, policy.slack_rel * least)
    within = [p for p in by_load if loads[p] <= least + slack * (1 + (matches[p] - floor) / len(chunks))]
    return max(within, key=lambda p: (matches[p], -loads[p], -indexes[p].requests, -p))


def test_the_choice_and_the_index_update_follow_the_rule_on_a_random_mix_of_shared_prefixes() -> None:
    rng = random.Random(7)
    conversations = [[rng.randrange(30) for _ in range(rng.randrange(1, 10))] for _ in range(40)]
    policy = PrefixAwarePolicy()
    indexes = [PrefixIndex(capacity=40) for _ in range(3)]
    plain = [PrefixIndex(capacity=40) for _ in range(3)]  # updated without the policy's `held` hint
    loads = [0, 0, 0]
    for _ in range(2000):
        conversation = rng.choice(conversations)
        chunks = chain_ids([0, *conversation[: rng.randrange(1, len(conversation) + 1)]])
        expected = reference_choice(policy, loads, indexes, chunks)
        chosen, held = policy.place(loads, indexes, chunks)
        assert (chosen, held) == (expected, indexes[expected].match(chunks))
        indexes[chosen].insert(chunks, held)
        plain[chosen].insert(chunks)
        assert [i.match(chunks) for i in indexes] == [i.match(chunks) for i in plain]
        loads[chosen] += 1
        loads[rng.randrange(3)] = max(0, loads[rng.randrange(3)] - rng.randrange(3))
    assert all(len(a) == len(b) for a, b in zip(indexes, plain, strict=True))
