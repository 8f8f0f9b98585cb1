"""Prefix-aware routing in the gateway: repeated prefixes stick to a replica, load still wins, and a
replica that restarts or fails is forgotten."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import deployment, run, running_gateway, table, upstreams, url
from tests.gateway.test_prefix_policy import reference_choice
from tide.gateway import DeploymentRoute, ReplicaEndpoint
from tide.gateway.balancing import DeploymentState, ReplicaState
from tide.gateway.prefix import PrefixAwarePolicy, chain_ids, prompt_chunks
from tide.gateway.route_file import parse_route_config
from tide.spec.routing import LEAST_LOADED, PREFIX_AWARE

DOCUMENT = "A long shared document that every question is about. " * 60  # ~3 KB


def chat(question: str, document: str = DOCUMENT) -> dict[str, Any]:
    return {
        "model": "tiny",
        "messages": [{"role": "system", "content": document}, {"role": "user", "content": question}],
        "max_tokens": 4,
    }


def served_by(routing: str, bodies: list[dict[str, Any]]) -> list[str]:
    async def scenario() -> list[str]:
        async with upstreams(FakeUpstream("a"), FakeUpstream("b"), FakeUpstream("c")) as fakes:
            routes = table(deployment("tiny", list(fakes), routing=routing))
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                served = []
                for body in bodies:
                    response = await http.post(url(gw), json=body)
                    assert response.status_code == 200
                    served.append(response.headers["x-replica"])
                return served

    return run(scenario())


def test_a_repeated_long_prefix_goes_to_the_same_replica() -> None:
    bodies = [chat(f"question {n}?") for n in range(9)]
    prefix_aware = served_by(PREFIX_AWARE, bodies)
    assert len(set(prefix_aware)) == 1, prefix_aware
    least_loaded = served_by(LEAST_LOADED, bodies)
    assert len(set(least_loaded)) == 3, least_loaded  # ties rotate: the prefix lands everywhere


def test_different_documents_spread_and_each_sticks() -> None:
    documents = [f"Document {d}: " + f"content of document {d}. " * 150 for d in range(3)]
    bodies = [chat(f"question {n}", documents[n % 3]) for n in range(12)]
    served = served_by(PREFIX_AWARE, bodies)
    by_document = {d: {served[n] for n in range(d, 12, 3)} for d in range(3)}
    assert all(len(replicas) == 1 for replicas in by_document.values()), by_document
    assert len({next(iter(r)) for r in by_document.values()}) == 3, by_document


def test_a_busy_holder_is_passed_over_for_an_idle_replica() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        slow = FakeUpstream("holder", hold=release)
        async with upstreams(slow, FakeUpstream("other")) as (holder, other):
            routes = table(deployment("tiny", [holder, other], routing=PREFIX_AWARE))
            async with running_gateway(routes) as gw, httpx.AsyncClient(timeout=10) as http:
                # the first request teaches the gateway that `holder` has the prefix, and stays in flight
                held = [asyncio.create_task(http.post(url(gw), json=chat("first")))]
                while gw.in_flight("holder") + gw.in_flight("other") < 1:
                    await asyncio.sleep(0.01)
                assert gw.in_flight("holder") == 1
                # more requests on the prefix pile on `holder` only up to the load slack
                for n in range(20):
                    held.append(asyncio.create_task(http.post(url(gw), json=chat(f"q{n}"))))
                    while len(holder.requests) + len(other.requests) < n + 2:  # each one reached a replica
                        await asyncio.sleep(0.01)
                assert len(other.requests) > 0, "the idle replica got none of a hot prefix"
                assert gw.in_flight("holder") <= 1 + 2 * 4 + 1
                release.set()
                for task in held:
                    assert (await task).status_code == 200

    run(scenario())


def deployment_state(*urls: str) -> DeploymentState:
    route = DeploymentRoute(
        "d", "m", 100, tuple(ReplicaEndpoint(f"r{i}", u) for i, u in enumerate(urls)), routing=PREFIX_AWARE
    )
    state = DeploymentState(route)
    state.replicas = [ReplicaState(endpoint, state) for endpoint in route.replicas]
    return state


def test_a_replica_at_a_new_address_or_after_a_failure_starts_empty() -> None:
    d = deployment_state("http://127.0.0.1:9001/v1", "http://127.0.0.1:9002/v1")
    prefix = prompt_chunks(orjson.dumps(chat("q")), chat("q"))
    first = d.pick_replica(prefix=prefix)
    assert first is not None and first.prefix_index.match(prefix) == len(prefix)
    assert d.pick_replica(prefix=prefix) is first
    first.update(ReplicaEndpoint(first.replica_id, "http://127.0.0.1:9001/v1"))  # same address: kept
    assert first.prefix_index.match(prefix) == len(prefix)
    first.update(ReplicaEndpoint(first.replica_id, "http://127.0.0.1:9003/v1"))  # restarted elsewhere
    assert first.prefix_index.match(prefix) == 0


def test_a_failed_replica_is_forgotten_by_the_gateway() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("a"), FakeUpstream("b")) as (a, b):
            routes = table(deployment("tiny", [a, b], routing=PREFIX_AWARE))
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                first = (await http.post(url(gw), json=chat("q"))).headers["x-replica"]
                replica = gw._replicas[first]
                assert len(replica.prefix_index) > 0
                gw.replica_book.failed(replica)
                assert len(replica.prefix_index) == 0

    run(scenario())


def test_route_file_takes_a_routing_policy_and_rejects_unknown_ones() -> None:
    config = {"models": {"m": [{"endpoints": ["http://127.0.0.1:1/v1"], "routing": "prefix-aware"}]}}
    assert parse_route_config(config).routes["m"][0].routing == PREFIX_AWARE
    config["models"]["m"][0]["routing"] = "sticky"
    try:
        parse_route_config(config)
    except ValueError as error:
        assert "routing must be one of least-loaded, prefix-aware" in str(error)
    else:
        raise AssertionError("an unknown routing policy was accepted")


def test_requests_without_a_prompt_use_least_loaded_rotation() -> None:
    served = served_by(PREFIX_AWARE, [{"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}] * 6)
    assert Counter(served) == Counter({"a": 2, "b": 2, "c": 2})


def test_the_routing_policy_travels_to_remote_gateways() -> None:
    from tide.gateway.wire import route_table_from_json, route_table_to_json

    routes = table(deployment("tiny", ["a", "b"], routing=PREFIX_AWARE))
    assert route_table_from_json(route_table_to_json(routes)) == routes
    older = route_table_to_json(routes)  # a controller from before the field: least-loaded
    del older["routes"]["tiny"][0]["routing"]
    assert route_table_from_json(older).routes["tiny"][0].routing == LEAST_LOADED


def test_the_gateway_picks_by_the_policy_rule_on_a_random_mix_of_shared_prefixes() -> None:
    """The deployment's pick (a table of who holds what, shortcuts for one holder) makes the choice the rule
    states, replica by replica, with eviction (small indexes), replicas leaving and coming back, exclusions."""
    rng = random.Random(11)
    conversations = [[rng.randrange(30) for _ in range(rng.randrange(1, 10))] for _ in range(40)]
    urls = [f"http://127.0.0.1:{9001 + i}/v1" for i in range(4)]
    state = deployment_state(*urls)
    everyone = list(state.replicas)
    policy = PrefixAwarePolicy()
    for replica in everyone:
        replica.prefix_index.capacity = 40
    for step in range(2000):
        if step % 250 == 249:  # one replica leaves the routing table, another comes back (empty)
            members = [r for r in everyone if r is not rng.choice(everyone)]
            state.replace_replicas(members)
            assert all(r.prefix_index.table is None and len(r.prefix_index) == 0 for r in everyone if r not in members)
            for replica in members:
                replica.prefix_index.capacity = 40
        conversation = rng.choice(conversations)
        chunks = chain_ids([0, *conversation[: rng.randrange(1, len(conversation) + 1)]])
        exclude = {rng.choice(state.replicas).replica_id} if rng.random() < 0.1 else set()
        allowed = [r for r in state.replicas if r.replica_id not in exclude]
        indexes = [r.prefix_index for r in allowed]
        expected = allowed[reference_choice(policy, [r.in_flight for r in allowed], indexes, chunks)]
        held = expected.prefix_index.match(chunks)
        chosen = state.pick_replica(exclude=exclude, prefix=chunks)
        assert chosen is expected
        assert chosen.prefix_index.match(chunks) == len(chunks) >= held
        chosen.in_flight += 1
        finished = rng.choice(state.replicas)
        finished.in_flight = max(0, finished.in_flight - rng.randrange(3))
    table = state.prefix_table.holders
    for replica in everyone:  # the table holds exactly what the indexes hold
        index = replica.prefix_index
        assert all(table[name] & index.bit for name in index._names)
    assert sum(len(r.prefix_index) for r in state.replicas) == sum(bin(bits).count("1") for bits in table.values())


def test_the_pick_of_a_prompt_held_whole_follows_the_rule_at_any_load() -> None:
    """The one-holder shortcut reads the rule's limit from a table of ints up to some least load, and
    computes it beyond: both give the rule's choice, at the limit and one past it."""
    state = deployment_state("http://127.0.0.1:9001/v1", "http://127.0.0.1:9002/v1")
    holder, other = state.replicas
    chunks = chain_ids([1, 2, 3])
    holder.prefix_index.insert(chunks)
    policy = PrefixAwarePolicy()
    for least in (0, 3, 9, 10, 100, 511, 512, 513, 5000):
        other.in_flight = least
        limit = int(policy.limit(least, 2))
        for load in (limit, limit + 1):
            holder.in_flight = load
            indexes = [holder.prefix_index, other.prefix_index]
            expected = state.replicas[reference_choice(policy, [load, least], indexes, chunks)]
            assert expected is (holder if load == limit else other)
            assert state.pick_replica(prefix=chunks) is expected
            expected.prefix_index.clear()  # the next case starts from the holder alone holding it
            holder.prefix_index.insert(chunks)


def test_a_gateway_without_the_c_names_says_so_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An install without a C compiler still routes by prefix (Python names), and the log says why its CPU
    per request is higher; one with the extension says nothing."""
    from tide.gateway import prefix

    async def start_and_stop() -> None:
        async with upstreams(FakeUpstream("a")) as fakes, running_gateway(table(deployment("tiny", list(fakes)))):
            pass

    with caplog.at_level(logging.WARNING, logger="tide.gateway.gateway"):
        monkeypatch.setattr(prefix, "NATIVE_NAMES", True)
        run(start_and_stop())
        assert "_prefixnames.c is not built" not in caplog.text
        monkeypatch.setattr(prefix, "NATIVE_NAMES", False)
        run(start_and_stop())
        assert "_prefixnames.c is not built" in caplog.text
