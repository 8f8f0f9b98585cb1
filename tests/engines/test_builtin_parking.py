"""Park and wake of the real built-in engine on the tiny model (CPU): while parked it refuses to serve
and says so on /health; after a wake it answers again, the same answer as before, at either level."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.engines.engine_process import EngineProcess, launch_engine

GREEDY = {"model": "tiny", "prompt": "hello there", "max_tokens": 6, "temperature": 0}


@pytest.fixture(scope="module")
def parking_engine(tiny_model_dir: pathlib.Path) -> Iterator[EngineProcess]:
    proc = launch_engine(tiny_model_dir)
    try:
        yield proc
    finally:
        proc.stop()


def complete(base: str) -> httpx.Response:
    return httpx.post(f"{base}/v1/completions", json=GREEDY, timeout=30)


@pytest.mark.parametrize("level", [1, 2])
def test_a_parked_engine_refuses_work_and_serves_again_after_wake(parking_engine: EngineProcess, level: int) -> None:
    base = parking_engine.base_url
    before = complete(base)
    assert before.status_code == 200, before.text

    parked = httpx.post(f"{base}/tide/park", params={"level": level}, timeout=30)
    assert parked.status_code == 200, parked.text
    assert parked.json()["level"] == level
    # Level 1 keeps the weights in host memory (the tiny model's ~20 MB of float32), level 2 drops them.
    assert (parked.json()["hostBytes"] > 1_000_000) if level == 1 else (parked.json()["hostBytes"] == 0)
    assert parking_engine.wait_for("parking", 10)["level"] == level
    assert parking_engine.wait_for("parked", 10)["level"] == level

    health = httpx.get(f"{base}/health", timeout=5)
    assert health.status_code == 503 and health.json() == {"status": "parked", "level": level}
    refused = complete(base)
    assert refused.status_code == 503 and "parked" in refused.json()["error"]["message"]
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert f'tide_engine_parked{{model="tiny"}} {level}' in metrics

    woke = httpx.post(f"{base}/tide/wake", timeout=60)
    assert woke.status_code == 200 and woke.json()["woke"] is True, woke.text
    parking_engine.wait_for("waking", 10)
    assert parking_engine.wait_for("ready", 10)["woke"] == level
    assert httpx.get(f"{base}/health", timeout=5).status_code == 200
    after = complete(base)
    assert after.status_code == 200, after.text
    assert after.json()["choices"][0]["text"] == before.json()["choices"][0]["text"]


def test_park_waits_for_a_request_in_flight_and_counters_never_go_back(parking_engine: EngineProcess) -> None:
    base = parking_engine.base_url
    generated = "tide_engine_generated_tokens_total"

    def counter() -> float:
        for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
            if line.startswith(generated + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError("no token counter")

    results: list[httpx.Response] = []
    started = threading.Event()

    def long_request() -> None:
        with httpx.stream(
            "POST", f"{base}/v1/completions", json={**GREEDY, "max_tokens": 64, "stream": True}, timeout=60
        ) as response:
            started.set()
            response.read()
            results.append(response)

    worker = threading.Thread(target=long_request)
    worker.start()
    assert started.wait(30)
    parked = httpx.post(f"{base}/tide/park", params={"level": 1}, timeout=60)
    worker.join(60)
    assert parked.status_code == 200, parked.text
    assert results and results[0].status_code == 200 and b"[DONE]" in results[0].content  # finished, not cut off
    tokens = counter()
    assert tokens >= 64
    assert httpx.post(f"{base}/tide/wake", timeout=60).status_code == 200
    assert counter() == tokens


def test_park_rejects_a_bad_level_and_wake_when_serving_is_a_no_op(parking_engine: EngineProcess) -> None:
    base = parking_engine.base_url
    bad = httpx.post(f"{base}/tide/park", params={"level": 3}, timeout=5)
    assert bad.status_code == 400 and "level" in bad.json()["error"]["message"]
    assert httpx.post(f"{base}/tide/wake", timeout=5).json() == {"status": "ok", "woke": False}
    assert complete(base).status_code == 200
