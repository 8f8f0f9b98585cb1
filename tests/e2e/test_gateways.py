"""Gateway resources on a real `tide up`: two gateways with different auth and routing (team: apiKeyAuth,
header-based; edge: coreWeaveAuth, path-based), told apart by host name, serving one model name with
different weight splits; a key of team is refused by edge; a request-limited and a token-limited key get
429 with Retry-After while team's other key passes; per-key usage adds up to the gateway totals in
/usage and /metrics; a revoked key stops working."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec
from tests.support.waiting import wait_until

TEAM = {
    "name": "team",
    "apiKeyAuth": {},
    "headerBasedRouting": {"headerName": "X-Model"},
    "endpointConfiguration": {"additionalDns": ["team.example.com"]},
}
EDGE = {"name": "edge", "coreWeaveAuth": {}, "pathBasedRouting": {}}
MODEL = "tiny-shared"
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def routed(metrics: str) -> dict[str, float]:
    """tide_gateway_requests_total by deployment."""
    pattern = r'^tide_gateway_requests_total\{deployment="([^"]+)"\} (\S+)$'
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, metrics, re.MULTILINE)}


def test_two_gateways_with_their_own_auth_routing_split_limits_and_usage(clean_tide: TideProcess) -> None:
    with clean_tide.api() as api:
        created = api.post("/gateways", json=TEAM)
        assert created.status_code == 201, created.text
        assert created.json()["gateway"]["status"]["endpoints"] == [
            f"http://team.localhost:{clean_tide.gateway_port}/v1",
            f"http://team.example.com:{clean_tide.gateway_port}/v1",
        ]
        assert api.post("/gateways", json=EDGE).status_code == 201
    try:
        # One model name on both gateways: team splits it 3:1 over two deployments, edge has only the first.
        clean_tide.apply(
            tiny_spec("tiny-a", model={"name": MODEL}, gatewayIds=["team", "edge"], traffic={"weight": 300})
        )
        clean_tide.apply(tiny_spec("tiny-b", model={"name": MODEL}, gatewayIds=["team"], traffic={"weight": 100}))
        clean_tide.wait_for("tiny-a", "STATUS_READY", ready=1)
        clean_tide.wait_for("tiny-b", "STATUS_READY", ready=1)
        listed = clean_tide.cli("get", "gateways").stdout
        assert "headerBasedRouting (x-model)" in listed and "team.example.com" in listed and "edge" in listed
        key = clean_tide.cli("keys", "create", "team", "--name", "e2e").stdout.strip()
        assert key.startswith("tide_")
        limited = clean_tide.cli("keys", "create", "team", "--requests-per-minute", "2").stdout.strip()
        frugal = clean_tide.cli("keys", "create", "team", "--tokens-per-minute", "1").stdout.strip()
        with clean_tide.api() as api:
            ids = {k["name"]: k["id"] for k in api.get("/gateways/team/keys").json()["apiKeys"]}
        assert ids["e2e"] in clean_tide.cli("keys", "list", "team").stdout
        base = clean_tide.gateway_url
        root = base.removesuffix("/v1")
        ask = {"host": "team.example.com", "authorization": f"Bearer {key}", "x-model": MODEL}
        edge = {"host": f"edge.localhost:{clean_tide.gateway_port}", "authorization": f"Bearer {clean_tide.token}"}
        with httpx.Client(timeout=60) as http:

            def team_call(secret: str) -> httpx.Response:
                return http.post(
                    f"{base}/chat/completions", json=CHAT, headers={**ask, "authorization": f"Bearer {secret}"}
                )

            def edge_call(headers: dict[str, str]) -> httpx.Response:
                return http.post(f"{root}/{MODEL}/v1/chat/completions", json=CHAT, headers=headers)

            def opens(secret: str) -> bool:
                headers = {**ask, "authorization": f"Bearer {secret}"}
                return http.get(f"{base}/models", headers=headers).status_code == 200

            # The keys reach the gateway with the next routing table; /v1/models counts against no limit.
            wait_until(lambda: all(opens(s) for s in (key, limited, frugal)), 10, "the new keys")
            before = routed(httpx.get(f"{clean_tide.api_url}/metrics").text)
            assert [team_call(key).status_code for _ in range(8)] == [200] * 8
            assert [edge_call(edge).status_code for _ in range(4)] == [200] * 4
            # Edge sends all of the model to tiny-a; team splits it with tiny-b (3:1, a few percent either way).
            expected_a, expected_b = before.get("tiny-a", 0) + 4 + 6, before.get("tiny-b", 0) + 2
            counts: dict[str, float] = {}

            def split_seen() -> bool:
                counts.update(routed(httpx.get(f"{clean_tide.api_url}/metrics").text))
                return counts.get("tiny-a", 0) + counts.get("tiny-b", 0) >= expected_a + expected_b

            wait_until(split_seen, 10, "the 12 requests in /metrics")
            # A new routing table restarts the round-robin: allow one request either way.
            assert abs(counts["tiny-b"] - expected_b) <= 1 and abs(counts["tiny-a"] - expected_a) <= 1, counts
            # Each gateway its own credentials: team's key opens no edge, the token no team, nothing opens edge.
            assert edge_call({**edge, "authorization": f"Bearer {key}"}).status_code == 401
            assert edge_call({"host": edge["host"]}).status_code == 401
            assert team_call(clean_tide.token).status_code == 401
            assert http.get(f"{base}/models", headers=edge).json()["data"] == [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "tide"}
            ]
            # The default gateway (any other Host) has no such model.
            assert http.post(f"{base}/chat/completions", json={**CHAT, "model": MODEL}).status_code == 404
            # A request-limited key: its third request in the minute gets 429 with Retry-After.
            codes = [team_call(limited).status_code for _ in range(3)]
            assert codes == [200, 200, 429], codes
            # A token-limited key (1 token a minute): its first response used the minute's tokens.
            assert team_call(frugal).status_code == 200
            refused = team_call(frugal)
            assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
            assert "tokens per minute" in refused.json()["error"]["message"]
            assert team_call(key).status_code == 200  # team's other key is unaffected
            # Usage per key adds up to the gateway's totals, the same in /usage and /metrics.
            usage: dict[str, Any] = {}

            def usage_seen() -> bool:
                with clean_tide.api() as api:
                    gateways = api.get("/usage").json()["gateways"]
                usage.update({g["gatewayId"]: g for g in gateways})
                return "team" in usage and usage["team"]["requests"] == 8 + 2 + 1 + 1

            wait_until(usage_seen, 10, "team's 12 served requests in /usage")
            team = usage["team"]
            keys = {k["keyId"]: k for k in team["keys"]}
            assert keys[ids["e2e"]]["requests"] == 9 and keys[ids["e2e"]]["completionTokens"] > 0
            assert keys[ids["e2e"]]["promptTokens"] > 0
            for field in ("requests", "promptTokens", "completionTokens"):
                assert sum(k[field] for k in team["keys"]) == team[field], field
            assert usage["edge"]["keys"] == [{"keyId": "management-token", **_totals(usage["edge"])}]
            assert usage["edge"]["requests"] == 4
            metrics = httpx.get(f"{clean_tide.api_url}/metrics").text
            line = f'tide_gateway_key_requests_total{{gateway="team",key="{ids["e2e"]}"}} 9.0'
            assert line in metrics
            assert 'tide_gateway_usage_requests_total{gateway="team"} 12.0' in metrics
            assert key not in metrics and key not in str(usage)
            clean_tide.cli("keys", "revoke", "team", ids["e2e"])
            wait_until(lambda: team_call(key).status_code == 401, 10, "the revoked key to be refused")
    finally:
        clean_tide.delete_all()
        with clean_tide.api() as api:
            assert api.delete("/gateways/team").status_code == 200
            assert api.delete("/gateways/edge").status_code == 200


def _totals(gateway: dict[str, Any]) -> dict[str, int]:
    return {field: gateway[field] for field in ("requests", "promptTokens", "completionTokens")}
