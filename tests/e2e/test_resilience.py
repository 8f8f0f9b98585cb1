"""No request lost: kill -9 of a replica under load, and a load run from zero to several replicas and back."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.e2e.conftest import TideProcess, make_buckets, tiny_spec
from tests.support.waiting import wait_until
from tide.store import Store
from tide.store.claims import RunLog


def test_kill_9_of_a_replica_under_load_loses_nothing_silently(clean_tide: TideProcess) -> None:
    clean_tide.apply(tiny_spec("tiny-kill", autoscaling={"min": 2, "max": 2}))
    status = clean_tide.wait_for("tiny-kill", "STATUS_READY", ready=2)
    victim = status["replicas"][0]

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def plain() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                body = {"model": "tiny-kill", "prompt": "hold on", "max_tokens": 16}
                response = client.post(f"{clean_tide.gateway_url}/completions", json=body)
                with lock:
                    outcomes["plain ok" if response.status_code == 200 else f"plain {response.status_code}"] += 1

    def streaming() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                body = {"model": "tiny-kill", "prompt": "stream on", "max_tokens": 32, "stream": True}
                with client.stream("POST", f"{clean_tide.gateway_url}/completions", json=body) as response:
                    if response.status_code != 200:
                        kind = f"stream {response.status_code}"
                    else:
                        kind = "stream truncated"  # unless it ends with [DONE] or an error event
                        try:
                            for line in response.iter_lines():
                                if line == "data: [DONE]":
                                    kind = "stream ok"
                                elif line.startswith("data: ") and "error" in json.loads(line[6:]):
                                    kind = "stream error event"
                        except httpx.HTTPError:
                            kind = "stream truncated"
                with lock:
                    outcomes[kind] += 1

    threads = [threading.Thread(target=plain) for _ in range(3)] + [
        threading.Thread(target=streaming) for _ in range(2)
    ]
    for t in threads:
        t.start()
    try:
        # Kill once both kinds of request are flowing, and keep the load on until plenty more were served
        # after the kill: conditions, not durations, so a slow machine only takes longer.
        wait_until(lambda: outcomes["plain ok"] >= 3 and outcomes["stream ok"] >= 1, 60, "load flowing before kill")
        os.kill(victim["pid"], signal.SIGKILL)
        served_at_kill = outcomes["plain ok"]
        wait_until(lambda: outcomes["plain ok"] >= served_at_kill + 10, 60, "10 plain requests served after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join()
    # Plain requests had sent no byte to the client: retried on the other replica, all succeed. Streams
    # already under way may fail, but only with an error event the client sees.
    assert set(outcomes) <= {"plain ok", "stream ok", "stream error event"}, outcomes
    # The crash is visible, and the replica is replaced.
    status = clean_tide.wait_for("tiny-kill", "STATUS_READY", ready=2)
    assert victim["id"] not in {r["id"] for r in status["replicas"]}


def test_from_zero_to_several_replicas_and_back_without_a_failed_request(clean_tide: TideProcess) -> None:
    clean_tide.apply(
        tiny_spec(
            "tiny-burst",
            autoscaling={
                "min": 0,
                "max": 3,
                "concurrency": 2,
                "initialScale": 0,
                "profile": "knative",
                "window": "6s",
                "scaleToZeroGracePeriod": "2s",
            },
        )
    )
    clean_tide.wait_for("tiny-burst", "STATUS_READY", timeout=30)
    # Twelve clients keep sending until a second replica has been seen ready (at least `minimum` requests,
    # at most `maximum`): the load lasts as long as the scale-up takes on this machine, however fast it is.
    minimum, maximum = 200, 20_000
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    sent = [0]
    peak = [0]
    scaled = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=300) as http:
            while True:
                with lock:
                    if sent[0] >= maximum or (scaled.is_set() and sent[0] >= minimum):
                        return
                    sent[0] += 1
                body = {"model": "tiny-burst", "prompt": "burst", "max_tokens": 2}
                code = http.post(f"{clean_tide.gateway_url}/completions", json=body).status_code
                with lock:
                    codes[code] += 1

    def watch() -> None:
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], clean_tide.status("tiny-burst")["readyReplicas"])
            if peak[0] >= 2:
                scaled.set()
            time.sleep(0.2)

    threads = [threading.Thread(target=client) for _ in range(12)]
    watcher = threading.Thread(target=watch)
    for t in threads:
        t.start()
    watcher.start()
    for t in threads:
        t.join()
    watcher.join()
    assert codes == Counter({200: sent[0]}), codes
    assert peak[0] >= 2, f"no second replica became ready during {sent[0]} requests"
    deadline = time.monotonic() + 90
    while clean_tide.status("tiny-burst")["replicas"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not clean_tide.status("tiny-burst")["replicas"]


def test_replicas_do_not_outlive_a_killed_tide(tmp_path: Path, tiny_model: Path) -> None:
    server = TideProcess(tmp_path / "data", make_buckets(tmp_path, tiny_model))
    server.data_dir.mkdir()
    server.start()
    try:
        server.apply(tiny_spec("tiny-orphan"))
        pid = server.wait_for("tiny-orphan", "STATUS_READY", ready=1)["replicas"][0]["pid"]
        assert server.process is not None
        server.process.kill()  # SIGKILL: no chance to stop its children itself
        server.process.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        assert not _alive(pid), "the replica outlived the tide process that owned it"
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_usage_older_than_the_retention_is_forgotten_and_recent_usage_kept(tmp_path: Path) -> None:
    """`tide up --usage-retention 1d` deletes replica runs that ended over a day ago, at start."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    store = Store(f"sqlite:///{data_dir / 'tide.db'}")
    runs = RunLog(store)
    now = time.time()
    runs.run_started("old-model", "old-r0", 1, "i-1", now - 3 * 86400)
    runs.run_stopped("old-r0", now - 2 * 86400)  # ended two days ago: past the retention
    runs.run_started("recent-model", "recent-r0", 2, "i-1", now - 7200)
    runs.run_stopped("recent-r0", now - 3600)
    store.close()

    server = TideProcess(data_dir, tmp_path / "buckets", ("--usage-retention", "1d"))
    server.start()
    try:
        week = {"start": str(now - 7 * 86400), "end": str(now)}
        deadline = time.monotonic() + 10
        with server.api() as api:
            while True:  # the prune runs as the controller starts, just after the API answers
                usage = api.get("/usage", params=week).json()
                ids = [d["deploymentId"] for d in usage["deployments"]]
                if ids == ["recent-model"] or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert ids == ["recent-model"]
        assert usage["deployments"][0]["gpuMinutes"] == 2 * 60
        assert "deleted 1 replica runs" in server.server_log()
    finally:
        server.stop()
