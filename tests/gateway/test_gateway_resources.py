"""One gateway process serves every gateway resource, told apart by the Host header: each has its own
models (/v1/models lists only them), its own weight split per model name, and its own routing header;
a Host no gateway claims goes to the default gateway."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

import httpx

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url
from tide.control.metrics import ControlMetrics, usage_json, usage_totals
from tide.gateway.routes import MANAGEMENT_TOKEN_KEY_ID, NO_KEY_ID, DeploymentLoad, GatewayRoutes, KeyGrant, RouteTable
from tide.gateway.usage import Usage
from tide.store.gateways import hash_key


def test_host_picks_the_gateway_its_models_and_its_weights() -> None:
    async def scenario() -> None:
        fakes = FakeUpstream("stable"), FakeUpstream("canary"), FakeUpstream("private")
        async with upstreams(*fakes) as (stable, canary, private):
            base = table(
                deployment("stable", [stable], model="chat", weight=900),
                deployment("canary", [canary], model="chat", weight=100),
                deployment("private", [private], model="secret"),
            )
            routes = replace(
                base,
                gateways=(
                    # default: "chat" split 900:100 between stable and canary
                    GatewayRoutes("default", ("default.localhost",), "", {"chat": ("stable", "canary")}),
                    # team: only the canary serves "chat" there (all of it), plus a model of its own
                    GatewayRoutes(
                        "team",
                        ("team.localhost", "ai.example.com"),
                        "x-model",
                        {"chat": ("canary",), "secret": ("private",)},
                    ),
                ),
            )
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:
                served: Counter[str] = Counter()
                for _ in range(100):
                    response = await http.post(url(gw), json={**CHAT, "model": "chat"})  # Host 127.0.0.1: default
                    served[response.headers["x-replica"]] += 1
                assert 85 <= served["stable"] <= 95 and served["canary"] == 100 - served["stable"], served
                team = {"host": "team.localhost:8080"}
                for _ in range(5):
                    response = await http.post(url(gw), json={**CHAT, "model": "chat"}, headers=team)
                    assert response.headers["x-replica"] == "canary"
                by_dns = await http.post(url(gw), json={**CHAT, "model": "secret"}, headers={"host": "AI.example.com"})
                assert by_dns.headers["x-replica"] == "private"
                # The team gateway routes by its own header; the default gateway does not know "secret".
                by_header = await http.post(
                    url(gw), json={**CHAT, "model": "chat"}, headers={**team, "x-model": "secret"}
                )
                assert by_header.headers["x-replica"] == "private"
                unknown = await http.post(url(gw), json={**CHAT, "model": "secret"})
                assert unknown.status_code == 404
                listed = (await http.get(url(gw, "/v1/models"), headers=team)).json()
                assert sorted(m["id"] for m in listed["data"]) == ["chat", "secret"]
                listed = (await http.get(url(gw, "/v1/models"))).json()
                assert [m["id"] for m in listed["data"]] == ["chat"]
                # One deployment state behind both gateways: the load signal counts every request.
                assert gw.load_snapshot()["canary"].requests_total == 5 + served["canary"]

    run(scenario())


def test_an_api_key_opens_its_own_gateway_only() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("a")) as (a,):
            base = table(deployment("a", [a], model="chat"))
            key_a, key_b = "tide_key-of-a", "tide_key-of-b"
            gateways = (
                GatewayRoutes("default", ("default.localhost",), "", {"chat": ("a",)}),
                GatewayRoutes("ga", ("ga.localhost",), "", {"chat": ("a",)}, {hash_key(key_a): KeyGrant("key-a")}),
                GatewayRoutes("gb", ("gb.localhost",), "", {"chat": ("a",)}, {hash_key(key_b): KeyGrant("key-b")}),
            )
            async with running_gateway(replace(base, gateways=gateways)) as gw, httpx.AsyncClient() as http:

                async def call(host: str, key: str | None) -> int:
                    headers = {"host": host, **({"authorization": f"Bearer {key}"} if key else {})}
                    return (await http.post(url(gw), json={**CHAT, "model": "chat"}, headers=headers)).status_code

                assert await call("ga.localhost", key_a) == 200
                assert await call("gb.localhost", key_a) == 401  # A's key opens no other gateway
                assert await call("gb.localhost", key_b) == 200
                assert await call("ga.localhost", None) == 401
                assert await call("127.0.0.1", None) == 200  # the default gateway here is open
                assert all("authorization" not in r.headers for r in a.requests)  # keys stay at the gateway
                gw.set_routes(replace(base, gateways=(gateways[0], replace(gateways[1], keys={}))))
                assert await call("ga.localhost", key_a) == 401  # revoked: the next table has no hash

    run(scenario())


def test_a_rate_limited_key_gets_429_with_retry_after_and_others_are_unaffected() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("a")) as (a,):
            limited, free = "tide_limited", "tide_free"
            gateways = (
                GatewayRoutes(
                    "ga",
                    ("ga.localhost",),
                    "",
                    {"chat": ("a",)},
                    {hash_key(limited): KeyGrant("limited", requests_per_minute=3), hash_key(free): KeyGrant("free")},
                ),
            )
            routes = replace(table(deployment("a", [a], model="chat")), gateways=gateways)
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:

                async def call(key: str) -> httpx.Response:
                    headers = {"host": "ga.localhost", "authorization": f"Bearer {key}"}
                    return await http.post(url(gw), json={**CHAT, "model": "chat"}, headers=headers)

                assert [(await call(limited)).status_code for _ in range(3)] == [200, 200, 200]
                refused = await call(limited)
                assert refused.status_code == 429
                assert 1 <= int(refused.headers["retry-after"]) <= 60
                assert refused.json()["error"]["code"] == "rate_limit_exceeded"
                assert [(await call(free)).status_code for _ in range(5)] == [200] * 5
                assert len(a.requests) == 8  # the refused request never reached a replica

    run(scenario())


def test_a_token_limited_key_is_refused_once_its_responses_used_the_tokens() -> None:
    """The fake engine reports 1 prompt + 3 completion tokens per response: a key allowed 8 tokens a
    minute gets two answers, then 429 with Retry-After naming the token limit; another key is unaffected."""

    async def scenario() -> None:
        async with upstreams(FakeUpstream("a")) as (a,):
            limited, free = "tide_limited", "tide_free"
            keys = {hash_key(limited): KeyGrant("limited", tokens_per_minute=8), hash_key(free): KeyGrant("free")}
            gateways = (GatewayRoutes("ga", ("ga.localhost",), "", {"chat": ("a",)}, keys),)
            routes = replace(table(deployment("a", [a], model="chat")), gateways=gateways)
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:

                async def call(key: str) -> httpx.Response:
                    headers = {"host": "ga.localhost", "authorization": f"Bearer {key}"}
                    return await http.post(url(gw), json={**CHAT, "model": "chat"}, headers=headers)

                assert [(await call(limited)).status_code for _ in range(2)] == [200, 200]
                refused = await call(limited)
                assert refused.status_code == 429, refused.text
                assert 1 <= int(refused.headers["retry-after"]) <= 60
                assert "8 tokens per minute" in refused.json()["error"]["message"]
                assert [(await call(free)).status_code for _ in range(3)] == [200] * 3
                assert len(a.requests) == 5

    run(scenario())


def test_core_weave_auth_takes_the_management_token_and_usage_adds_up_per_key() -> None:
    """A coreWeaveAuth gateway opens with the management API's token (its hash in the table) and with
    nothing else; every request and its reported tokens count for its gateway and key id, and the keys of
    a gateway add up to the gateway's own total."""

    async def scenario() -> None:
        async with upstreams(FakeUpstream("a")) as (a,):
            token, key = "management-secret", "tide_team-key"
            gateways = (
                GatewayRoutes("default", ("default.localhost",), "", {"chat": ("a",)}),
                GatewayRoutes(
                    "cw", ("cw.localhost",), "", {"chat": ("a",)}, {hash_key(token): KeyGrant(MANAGEMENT_TOKEN_KEY_ID)}
                ),
                GatewayRoutes("team", ("team.localhost",), "", {"chat": ("a",)}, {hash_key(key): KeyGrant("key-1")}),
            )
            routes = replace(table(deployment("a", [a], model="chat")), gateways=gateways)
            async with running_gateway(routes) as gw, httpx.AsyncClient() as http:

                async def call(host: str, secret: str | None, stream: bool = False) -> int:
                    headers = {"host": host, **({"authorization": f"Bearer {secret}"} if secret else {})}
                    body = {**CHAT, "model": "chat", "stream": stream}
                    return (await http.post(url(gw), json=body, headers=headers)).status_code

                assert await call("cw.localhost", token) == 200
                assert await call("cw.localhost", None) == 401
                assert await call("cw.localhost", key) == 401  # an API key is not the management token
                assert await call("team.localhost", token) == 401  # the token opens no apiKeyAuth gateway
                assert [await call("team.localhost", key) for _ in range(3)] == [200] * 3
                assert await call("127.0.0.1", None) == 200  # the default gateway keeps the process-wide rule
                assert await call("cw.localhost", token, stream=True) == 200

                load = gw.load_snapshot()["a"]
                by_key, by_gateway = usage_totals({"a": load})
                assert by_key[("cw", MANAGEMENT_TOKEN_KEY_ID)] == Usage(2, 1, 3)  # the stream reported none
                assert by_key[("team", "key-1")] == Usage(3, 3, 9)
                assert by_key[("default", NO_KEY_ID)] == Usage(1, 1, 3)
                for gateway_id, total in by_gateway.items():
                    summed = Usage()
                    for (g, _), usage in by_key.items():
                        if g == gateway_id:
                            summed.add(usage)
                    assert summed == total, gateway_id
                assert sum(u.requests for u in by_gateway.values()) == load.requests_total == 6
                listed = usage_json({"a": load})
                team = next(g for g in listed if g["gatewayId"] == "team")
                assert team == {
                    "gatewayId": "team",
                    "requests": 3,
                    "promptTokens": 3,
                    "completionTokens": 9,
                    "keys": [{"keyId": "key-1", "requests": 3, "promptTokens": 3, "completionTokens": 9}],
                }
                assert key not in str(listed) and token not in str(listed)

    run(scenario())


def test_usage_of_a_removed_deployment_stays_counted() -> None:
    async def scenario() -> None:
        async with upstreams(FakeUpstream("a"), FakeUpstream("b")) as (a, b):
            key = "tide_k"
            keys = {hash_key(key): KeyGrant("key-1")}

            def routes(*names: str) -> RouteTable:
                base = table(*(deployment(n, [{"a": a, "b": b}[n]], model=n) for n in names))
                return replace(
                    base, gateways=(GatewayRoutes("ga", ("ga.localhost",), "", {n: (n,) for n in names}, keys),)
                )

            async with running_gateway(routes("a", "b")) as gw, httpx.AsyncClient() as http:
                headers = {"host": "ga.localhost", "authorization": f"Bearer {key}"}
                for model in ("a", "b", "b"):
                    assert (await http.post(url(gw), json={**CHAT, "model": model}, headers=headers)).status_code == 200
                gw.set_routes(routes("a"))  # b is deleted
                snapshot = gw.load_snapshot()
                assert "b" not in snapshot
                by_key, by_gateway = usage_totals(snapshot)
                assert by_key[("ga", "key-1")] == by_gateway["ga"] == Usage(3, 3, 9)
                exposition = generate_latest_for(snapshot)
                assert 'deployment=""' not in exposition
                assert 'tide_gateway_key_requests_total{gateway="ga",key="key-1"} 3.0' in exposition

    run(scenario())


def generate_latest_for(snapshot: Mapping[str, DeploymentLoad]) -> str:
    metrics = ControlMetrics()
    metrics.set_gateway_loads(snapshot)
    return metrics.exposition().decode()
