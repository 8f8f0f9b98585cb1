"""A deployment that cannot start fails loudly: its requests get its condition within seconds, not a
queue timeout, and it holds no capacity a healthy deployment needs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TideProcess, make_buckets, tiny_spec

pytestmark = pytest.mark.timeout(180)


def chat(tide: TideProcess, model: str, timeout: float = 60) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    return httpx.post(f"{tide.gateway_url}/chat/completions", json=body, timeout=timeout)


def test_a_request_for_a_deployment_that_cannot_start_gets_its_condition_at_once(clean_tide: TideProcess) -> None:
    spec = tiny_spec("broken", weights={"bucket": "models", "path": "does-not-exist"})
    spec["autoscaling"] = {"min": 0, "max": 1}
    deployment_id = clean_tide.apply(spec)["spec"]["id"]
    started = time.monotonic()
    first = chat(clean_tide, "broken")  # queued while its replica tries to start; answered when it fails
    assert time.monotonic() - started < 30
    for response in (first, chat(clean_tide, "broken", timeout=5)):  # the second: at once
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "deployment_failed"
        assert "does-not-exist" in error["message"]
        assert "retry-after" not in response.headers
    assert clean_tide.status(deployment_id)["state"] != "STATUS_READY"


def test_a_scaled_to_zero_deployment_with_missing_weights_is_not_ready(clean_tide: TideProcess) -> None:
    spec = tiny_spec("idle-broken", weights={"bucket": "models", "path": "nowhere"})
    spec["autoscaling"] = {"min": 0, "max": 1}
    deployment_id = clean_tide.apply(spec)["spec"]["id"]
    status = clean_tide.wait_for(deployment_id, "STATUS_FAILED", timeout=30)
    assert any("nowhere" in c["message"] for c in status["conditions"]), status
    # A healthy scaled-to-zero deployment is still READY (its weights are there).
    healthy = clean_tide.apply({**tiny_spec("idle-ok"), "autoscaling": {"min": 0, "max": 1}})["spec"]["id"]
    clean_tide.wait_for(healthy, "STATUS_READY", timeout=30)


@pytest.mark.timeout(360)
def test_a_restart_under_load_with_a_broken_deployment(tmp_path: Path, tiny_model: Path) -> None:
    """Chaos, bounded: kill -9 `tide up` while clients send to two healthy deployments and a broken one,
    start it again. No 404 for a model that exists, the broken one answers its condition within seconds,
    the healthy ones are placed and serve again after one cold start."""
    server = TideProcess(tmp_path / "data", make_buckets(tmp_path, tiny_model))
    server.data_dir.mkdir()
    server.start()
    results: list[tuple[str, int, str, float]] = []  # model, status (0: no connection), error code, seconds
    stop = threading.Event()
    try:
        for name in ("chat-a", "chat-b"):
            server.apply(tiny_spec(name))
        server.apply(tiny_spec("broken", weights={"bucket": "models", "path": "missing"}))
        server.wait_for("chat-a", "STATUS_READY", ready=1)
        server.wait_for("chat-b", "STATUS_READY", ready=1)
        server.wait_for("broken", "STATUS_FAILED", timeout=30)

        def client(models: tuple[str, ...]) -> None:
            with httpx.Client(timeout=90) as http:
                i = 0
                while not stop.is_set() and sum(1 for r in results if r[1]) < 400:
                    model = models[i % len(models)]
                    i += 1
                    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
                    started = time.monotonic()
                    try:
                        response = http.post(f"{server.gateway_url}/chat/completions", json=body)
                        code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
                        results.append((model, response.status_code, code, time.monotonic() - started))
                    except httpx.TimeoutException:  # waited 90 s: a request held far too long
                        results.append((model, -1, "timeout", time.monotonic() - started))
                    except httpx.TransportError:  # the gateway is down for a moment: refused, not wrong
                        results.append((model, 0, "", time.monotonic() - started))
                        time.sleep(0.2)

        workers = [threading.Thread(target=client, args=(("chat-a", "chat-b", "broken"),)) for _ in range(3)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 10
        while len(results) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.process is not None
        server.process.kill()  # kill -9: replicas die with it
        server.process.wait()
        restarted_at = time.monotonic()
        server.start()
        server.wait_for("chat-a", "STATUS_READY", ready=1, timeout=60)
        server.wait_for("chat-b", "STATUS_READY", ready=1, timeout=60)
        back_in = time.monotonic() - restarted_at
        served_before = sum(1 for model, status, _, _ in results if status == 200)
        deadline = time.monotonic() + 20
        while sum(1 for _, status, _, _ in results if status == 200) < served_before + 20:
            assert time.monotonic() < deadline, "healthy deployments did not serve after the restart"
            time.sleep(0.1)
    finally:
        stop.set()
        for worker in workers if "workers" in locals() else []:
            worker.join(90)
        server.stop()
    assert not [r for r in results if r[1] == -1], "requests timed out"
    not_found = [r for r in results if r[1] == 404]
    assert not not_found, f"404s for models that exist: {not_found[:5]}"
    broken = [r for r in results if r[0] == "broken" and r[1] > 0]
    assert broken and all(r[1] == 503 and r[2] == "deployment_failed" for r in broken), broken[:5]
    assert max(r[3] for r in broken) < 10, "the broken deployment's requests waited"
    healthy = [r for r in results if r[0] != "broken" and r[1] > 0]
    assert all(r[1] == 200 for r in healthy), [r for r in healthy if r[1] != 200][:5]
    assert max(r[3] for r in healthy) < back_in + 15  # at most the restart plus one cold start
