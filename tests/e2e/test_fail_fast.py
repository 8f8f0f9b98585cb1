"""A deployment that cannot start fails loudly: its requests get its condition within seconds, not a
queue timeout, and it holds no capacity a healthy deployment needs."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TideProcess, tiny_spec

pytestmark = pytest.mark.timeout(180)


def chat(tide: TideProcess, model: str, timeout: float = 60) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    return httpx.post(f"{tide.gateway_url}/chat/completions", json=body, timeout=timeout)


def test_a_request_for_a_deployment_that_cannot_start_gets_its_condition_at_once(clean_tide: TideProcess) -> None:
    spec = tiny_spec("broken", weights={"bucket": "models", "path": "does-not-exist"})
    spec["autoscaling"] = {"min": 0, "max": 1}
    deployment_id = clean_tide.apply(spec)["id"]
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
    deployment_id = clean_tide.apply(spec)["id"]
    status = clean_tide.wait_for(deployment_id, "STATUS_FAILED", timeout=30)
    assert any("nowhere" in c["message"] for c in status["conditions"]), status
    # A healthy scaled-to-zero deployment is still READY (its weights are there).
    healthy = clean_tide.apply({**tiny_spec("idle-ok"), "autoscaling": {"min": 0, "max": 1}})["id"]
    clean_tide.wait_for(healthy, "STATUS_READY", timeout=30)
