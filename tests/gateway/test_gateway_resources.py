"""One gateway process serves every gateway resource, told apart by the Host header: each has its own
models (/v1/models lists only them), its own weight split per model name, and its own routing header;
a Host no gateway claims goes to the default gateway."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import httpx

from tests.gateway.fake_upstream import FakeUpstream
from tests.gateway.helpers import CHAT, deployment, run, running_gateway, table, upstreams, url
from tide.gateway.routes import GatewayRoutes
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
                GatewayRoutes("ga", ("ga.localhost",), "", {"chat": ("a",)}, frozenset({hash_key(key_a)})),
                GatewayRoutes("gb", ("gb.localhost",), "", {"chat": ("a",)}, frozenset({hash_key(key_b)})),
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
                gw.set_routes(replace(base, gateways=(gateways[0], replace(gateways[1], key_hashes=frozenset()))))
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
                    frozenset({hash_key(limited), hash_key(free)}),
                    {hash_key(limited): 3},
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
