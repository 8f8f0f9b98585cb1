"""Traffic split, disable/enable and unknown models, end to end: API -> store -> controller -> gateway."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TideProcess
from tests.e2e.stub_upstream import StubUpstream


@pytest.fixture()
def stubs() -> Iterator[tuple[StubUpstream, StubUpstream]]:
    a, b = StubUpstream("a"), StubUpstream("b")
    yield a, b
    a.close()
    b.close()


def external(deployment_id: str, url: str, weight: int, disabled: bool = False) -> dict[str, object]:
    return {
        "id": deployment_id,
        "name": "split-model",
        "runtime": {"engine": "external", "endpoints": [url]},
        "traffic": {"weight": weight},
        "disabled": disabled,
    }


def send(tide: TideProcess, n: int) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(n):
            body = {"model": "split-model", "messages": [{"role": "user", "content": "hi"}]}
            response = client.post(f"{tide.gateway_url}/chat/completions", json=body)
            assert response.status_code == 200, response.text


def wait_routed(tide: TideProcess, expect_status: int = 200, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = {"model": "split-model", "messages": []}
        if httpx.post(f"{tide.gateway_url}/chat/completions", json=body).status_code == expect_status:
            return
        time.sleep(0.05)
    raise AssertionError("route never appeared")


def wait_both_routed(tide: TideProcess, a: StubUpstream, b: StubUpstream, timeout: float = 30) -> None:
    """Send until each upstream has had a request: then the gateway's table holds both routes."""
    deadline = time.monotonic() + timeout
    while not (a.hits and b.hits):
        if time.monotonic() > deadline:
            raise AssertionError(f"both routes never reached the gateway (hits a={a.hits} b={b.hits})")
        send(tide, 5)


def test_weights_900_100_split_traffic_in_that_ratio(
    clean_tide: TideProcess, stubs: tuple[StubUpstream, StubUpstream]
) -> None:
    a, b = stubs
    clean_tide.apply(external("split-main", a.base_url, 900))
    clean_tide.apply(external("split-canary", b.base_url, 100))
    clean_tide.wait_for("split-canary", "STATUS_READY")
    wait_both_routed(clean_tide, a, b)
    a.reset()
    b.reset()
    send(clean_tide, 400)
    assert a.hits + b.hits == 400
    assert 0.08 <= b.hits / 400 <= 0.12, (a.hits, b.hits)  # 10 % +- 2 points


def test_disabled_deployment_gets_no_traffic_and_comes_back(
    clean_tide: TideProcess, stubs: tuple[StubUpstream, StubUpstream]
) -> None:
    a, b = stubs
    clean_tide.apply(external("split-main", a.base_url, 500))
    clean_tide.apply(external("split-canary", b.base_url, 500, disabled=True))
    wait_routed(clean_tide)
    a.reset()
    b.reset()
    send(clean_tide, 50)
    assert (a.hits, b.hits) == (50, 0)
    clean_tide.apply(external("split-canary", b.base_url, 500, disabled=False))
    wait_both_routed(clean_tide, a, b)
    a.reset()
    b.reset()
    send(clean_tide, 100)
    assert 30 <= b.hits <= 70, (a.hits, b.hits)  # 500/500: half, give or take


def test_weight_zero_takes_a_deployment_out_of_rotation(
    clean_tide: TideProcess, stubs: tuple[StubUpstream, StubUpstream]
) -> None:
    a, b = stubs
    clean_tide.apply(external("split-main", a.base_url, 10))
    clean_tide.apply(external("split-canary", b.base_url, 0))
    wait_routed(clean_tide)
    a.reset()
    b.reset()
    send(clean_tide, 40)
    assert (a.hits, b.hits) == (40, 0)


def test_unknown_model_is_404_in_openai_shape(clean_tide: TideProcess) -> None:
    response = httpx.post(f"{clean_tide.gateway_url}/chat/completions", json={"model": "no-such-model", "messages": []})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "no-such-model" in error["message"]


def test_management_api_needs_a_token(clean_tide: TideProcess) -> None:
    response = httpx.get(f"{clean_tide.api_url}/v1alpha1/inference/deployments")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_a_hung_external_server_gets_the_client_a_504_after_the_idle_timeout(tmp_path: Path) -> None:
    """`tide up --upstream-idle-timeout 1s`: a server that accepts a request and never answers is cut off."""
    hung = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog) and never answers
    server = TideProcess(tmp_path / "data", tmp_path / "buckets", ("--upstream-idle-timeout", "1s"))
    server.data_dir.mkdir()
    server.start()
    try:
        port = hung.getsockname()[1]
        server.apply({**external("hung-server", f"http://127.0.0.1:{port}/v1", 100), "name": "hung-model"})
        server.wait_for("hung-server", "STATUS_READY")
        body = {"model": "hung-model", "messages": [{"role": "user", "content": "hi"}]}
        deadline = time.monotonic() + 10
        while True:  # until the route reaches the gateway (404 before)
            started = time.monotonic()
            response = httpx.post(f"{server.gateway_url}/chat/completions", json=body, timeout=30)
            if response.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        waited = time.monotonic() - started
        assert response.status_code == 504, response.text
        assert response.json()["error"]["code"] == "upstream_timeout"
        assert 1.0 <= waited < 5, waited
    finally:
        server.stop()
        hung.close()


def test_gateway_api_keys_from_a_file_guard_every_route_and_rotate_without_a_restart(
    tmp_path: Path, stubs: tuple[StubUpstream, StubUpstream]
) -> None:
    keys = tmp_path / "gateway-keys"
    keys.write_text("sk-alice  # team a\n")
    server = TideProcess(tmp_path / "data", tmp_path / "buckets", ("--api-keys-file", str(keys)))
    server.data_dir.mkdir()
    server.start()
    try:
        server.apply(external("split-main", stubs[0].base_url, 100))
        server.wait_for("split-main", "STATUS_READY")
        body = {"model": "split-model", "messages": [{"role": "user", "content": "hi"}]}

        def status_with(key: str | None) -> int:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return httpx.post(f"{server.gateway_url}/chat/completions", json=body, headers=headers).status_code

        deadline = time.monotonic() + 10
        while status_with("sk-alice") != 200 and time.monotonic() < deadline:  # the route reaches the gateway
            time.sleep(0.05)
        assert status_with("sk-alice") == 200
        assert status_with(None) == 401 and status_with("sk-bob") == 401
        assert httpx.get(f"{server.gateway_url}/models").status_code == 401

        keys.write_text("sk-bob\n")  # rotate: bob in, alice out, no restart
        deadline = time.monotonic() + 10
        while status_with("sk-bob") != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_with("sk-bob") == 200 and status_with("sk-alice") == 401
    finally:
        server.stop()
