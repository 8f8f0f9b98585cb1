"""Gateway resources on a real `tide up`: a second gateway, told apart by its host name, opens with a key
issued for it (`tide keys`), routes by its own header and lists only its own models; the default gateway
does not serve what is not on it; a revoked key stops working."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec

TEAM = {
    "name": "team",
    "apiKeyAuth": {},
    "headerBasedRouting": {"headerName": "X-Model"},
    "endpointConfiguration": {"additionalDns": ["team.example.com"]},
}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_a_second_gateway_serves_its_own_deployments(clean_tide: TideProcess) -> None:
    with clean_tide.api() as api:
        created = api.post("/gateways", json=TEAM)
        assert created.status_code == 201, created.text
        endpoints = created.json()["gateway"]["status"]["endpoints"]
    assert endpoints == [
        f"http://team.localhost:{clean_tide.gateway_port}/v1",
        f"http://team.example.com:{clean_tide.gateway_port}/v1",
    ]
    with clean_tide.api() as api:
        assert (
            api.post("/gateways", json={"name": "other", "apiKeyAuth": {}, "bodyBasedRouting": {}}).status_code == 201
        )
    try:
        clean_tide.apply(tiny_spec("tiny-team", gatewayIds=["team"]))
        clean_tide.wait_for("tiny-team", "STATUS_READY", ready=1)
        listed = clean_tide.cli("get", "gateways").stdout
        assert "team" in listed and "headerBasedRouting (x-model)" in listed and "team.example.com" in listed
        key = clean_tide.cli("keys", "create", "team", "--name", "e2e").stdout.strip()
        assert key.startswith("tide_")
        key_id = clean_tide.cli("keys", "list", "team").stdout.splitlines()[1].split()[0]
        base = clean_tide.gateway_url
        team = {"host": "team.example.com", "authorization": f"Bearer {key}"}
        ask = {**team, "x-model": "tiny-team"}
        with httpx.Client(timeout=60) as http:
            deadline = time.monotonic() + 10  # the key reaches the gateway with the next routing table
            reply = http.post(f"{base}/chat/completions", json=CHAT, headers=ask)
            while reply.status_code == 401 and time.monotonic() < deadline:
                time.sleep(0.2)
                reply = http.post(f"{base}/chat/completions", json=CHAT, headers=ask)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"]
            no_key = http.post(
                f"{base}/chat/completions", json=CHAT, headers={"host": "team.example.com", "x-model": "tiny-team"}
            )
            assert no_key.status_code == 401
            listed = http.get(f"{base}/models", headers=team).json()["data"]
            assert [m["id"] for m in listed] == ["tiny-team"]
            # The default gateway (any other Host) has no such model.
            elsewhere = http.post(f"{base}/chat/completions", json={**CHAT, "model": "tiny-team"})
            assert elsewhere.status_code == 404, elsewhere.text
            assert "tiny-team" not in [m["id"] for m in http.get(f"{base}/models").json()["data"]]
            # A key of team opens no other apiKeyAuth gateway.
            other = http.post(f"{base}/chat/completions", json=CHAT, headers={**ask, "host": "other.localhost"})
            assert other.status_code == 401, other.text
            # A limited key: its third request in the minute gets 429 with Retry-After; team's first key is
            # unaffected.
            limited = clean_tide.cli("keys", "create", "team", "--requests-per-minute", "2").stdout.strip()
            slow = {**ask, "authorization": f"Bearer {limited}"}
            deadline = time.monotonic() + 10
            while http.post(f"{base}/models", headers=slow).status_code == 401:  # wait for the key to arrive
                assert time.monotonic() < deadline, "the new key never reached the gateway"
                time.sleep(0.2)
            codes = [http.post(f"{base}/chat/completions", json=CHAT, headers=slow).status_code for _ in range(3)]
            assert codes[-1] == 429 and 200 in codes, codes
            refused = http.post(f"{base}/chat/completions", json=CHAT, headers=slow)
            assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
            assert http.post(f"{base}/chat/completions", json=CHAT, headers=ask).status_code == 200
            clean_tide.cli("keys", "revoke", "team", key_id)
            deadline = time.monotonic() + 10
            while http.post(f"{base}/chat/completions", json=CHAT, headers=ask).status_code != 401:
                assert time.monotonic() < deadline, "a revoked key still opens the gateway"
                time.sleep(0.2)
    finally:
        clean_tide.delete_all()
        with clean_tide.api() as api:
            assert api.delete("/gateways/team").status_code == 200
            assert api.delete("/gateways/other").status_code == 200
