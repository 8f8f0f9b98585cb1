"""Gateway resources on a real `tide up`: a second gateway, told apart by its host name, routes by its
own header and lists only its own models; the default gateway does not serve what is not on it."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import TideProcess, tiny_spec

TEAM = {
    "name": "team",
    "coreWeaveAuth": {},
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
    try:
        clean_tide.apply(tiny_spec("tiny-team", gatewayIds=["team"]))
        clean_tide.wait_for("tiny-team", "STATUS_READY", ready=1)
        listed = clean_tide.cli("get", "gateways").stdout
        assert "team" in listed and "headerBasedRouting (x-model)" in listed and "team.example.com" in listed
        base = clean_tide.gateway_url
        team = {"host": "team.example.com"}
        with httpx.Client(timeout=60) as http:
            reply = http.post(f"{base}/chat/completions", json=CHAT, headers={**team, "x-model": "tiny-team"})
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"]
            listed = http.get(f"{base}/models", headers=team).json()["data"]
            assert [m["id"] for m in listed] == ["tiny-team"]
            # The default gateway (any other Host) has no such model.
            elsewhere = http.post(f"{base}/chat/completions", json={**CHAT, "model": "tiny-team"})
            assert elsewhere.status_code == 404, elsewhere.text
            assert "tiny-team" not in [m["id"] for m in http.get(f"{base}/models").json()["data"]]
    finally:
        clean_tide.delete_all()
        with clean_tide.api() as api:
            assert api.delete("/gateways/team").status_code == 200
