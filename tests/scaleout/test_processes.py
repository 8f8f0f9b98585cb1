"""Scaled out on loopback: two controllers (leader + standby) over one real Postgres, two gateways following them.

Real processes with the tiny model; the database is a throwaway Postgres started here (a SQLite file
when Postgres cannot start and TIDE_REQUIRE_POSTGRES is not set). Every process started here (and every
replica the controllers start) is killed by id at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.postgres import PostgresUnavailable, postgres_server
from tide.model.tiny import make_tiny_model

pytestmark = pytest.mark.timeout(240)

TOKEN = "tide_scaleout_test_token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tide.cli", *args], stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster:
    def __init__(self, root: Path, buckets: Path, db_url: str) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TIDE_BUCKETS_DIR": str(buckets),
            "TIDE_API_TOKEN": TOKEN,
        }
        self.db_url = db_url
        self.controller_ports = [free_port(), free_port()]
        self.gateway_ports = [free_port(), free_port()]
        self.controllers: list[Proc] = []
        self.gateways: list[Proc] = []
        self.replica_pids: set[int] = set()

    def controller_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.controller_ports[i]}"

    def gateway_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.gateway_ports[i]}/v1"

    def start_controller(self, i: int) -> Proc:
        data = self.root / f"controller{i}"
        data.mkdir(exist_ok=True)
        args = ["--data-dir", str(data), "controller", "--api-port", str(self.controller_ports[i])]
        args += ["--database-url", self.db_url, "--lease-ttl", "2", "--drain-timeout", "5"]
        proc = Proc(f"controller{i}", args, self.root / f"controller{i}.log", self.env)
        self.controllers.append(proc)
        wait_until(lambda: self._answers(i), 60, f"controller{i} did not start:\n{proc.text()}")
        return proc

    def _answers(self, i: int) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return self.api(i).get("/deployments").status_code == 200
        return False

    def start_gateway(self, i: int) -> Proc:
        args = ["--data-dir", str(self.root), "gateway", "--port", str(self.gateway_ports[i])]
        for c in range(2):
            args += ["--controller", self.controller_url(c)]
        proc = Proc(f"gateway{i}", args, self.root / f"gateway{i}.log", self.env)
        self.gateways.append(proc)
        wait_until(lambda: self._gateway_answers(i), 60, lambda: f"gateway{i} did not start:\n{proc.text()}")
        return proc

    def _gateway_answers(self, i: int) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{self.gateway_ports[i]}/health", timeout=5).status_code == 200
        return False

    def api(self, i: int) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.controller_url(i)}/v1alpha1/inference",
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )

    def leader(self) -> int | None:
        for i in range(2):
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(
                    f"{self.controller_url(i)}/internal/v1/leader", headers={"authorization": f"Bearer {TOKEN}"}
                )
                if r.status_code == 200 and r.json()["leader"]:
                    return i
        return None

    def status(self, i: int, deployment_id: str) -> dict[str, Any]:
        with self.api(i) as api:
            status = dict(api.get(f"/deployments/{deployment_id}").json()["deployment"]["status"])
        for replica in status.get("replicas", []):
            if "pid" in replica:
                self.replica_pids.add(int(replica["pid"]))
        return status

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.text()[-3000:]}" for p in self.controllers + self.gateways)

    def close(self) -> None:
        for proc in self.gateways + self.controllers:
            proc.kill(signal.SIGTERM)
        for pid in self.replica_pids:  # orphans of a controller killed with -9 (own process groups)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def wait_until(check: Any, timeout: float, message: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(message() if callable(message) else message)


def complete(client: httpx.Client, url: str, max_tokens: int = 4) -> int:
    body = {"model": "tiny-out", "prompt": "The sea", "max_tokens": max_tokens}
    return client.post(f"{url}/completions", json=body).status_code


SPEC: dict[str, Any] = {
    "name": "tiny-out",
    "weights": {"bucket": "models", "path": "tiny"},
    "runtime": {"engine": "builtin"},
    "autoscaling": {
        "min": 1,
        "max": 2,
        "concurrency": 4,
        "targetUtilization": 100,
        "profile": "knative",
        "window": "6s",
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scaleout")
    model = make_tiny_model(root / "model")
    buckets = root / "buckets"
    shutil.copytree(model, buckets / "models" / "tiny")
    with contextlib.ExitStack() as stack:
        yield from _cluster(root, buckets, stack)


def _cluster(root: Path, buckets: Path, stack: contextlib.ExitStack) -> Iterator[Cluster]:
    """On a real Postgres, as a cluster would run (SQLite when no Postgres can start and none is required)."""
    try:
        db_url = stack.enter_context(postgres_server()).create_database()
    except PostgresUnavailable as exc:
        if os.environ.get("TIDE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TIDE_REQUIRE_POSTGRES=1 but {exc}")
        db_url = f"sqlite:///{root / 'tide.db'}"
    c = Cluster(root, buckets, db_url)
    try:
        c.start_controller(0)
        wait_until(lambda: c.leader() == 0, 30, lambda: f"controller0 never led\n{c.logs()}")
        c.start_controller(1)
        c.start_gateway(0)
        c.start_gateway(1)
        with c.api(0) as api:
            assert api.post("/deployments", json=SPEC).status_code == 201
        wait_until(lambda: c.status(0, "tiny-out").get("readyReplicas") == 1, 120, lambda: f"not ready\n{c.logs()}")
        yield c
    finally:
        c.close()


def test_requests_through_both_gateways_reach_the_deployment(cluster: Cluster) -> None:
    assert cluster.leader() == 0
    with httpx.Client(timeout=60) as client:
        for i in range(2):
            # The first may race the gateway's first table; the gateway queues it, it does not fail.
            assert complete(client, cluster.gateway_url(i)) == 200, cluster.logs()
            assert complete(client, cluster.gateway_url(i)) == 200


def test_load_through_both_gateways_is_summed_and_readiness_is_pushed(cluster: Cluster) -> None:
    # 3 requests in flight through each gateway: each alone is under one replica's target of 4,
    # the sum (6) is over it, so the autoscaler asks for a second replica.
    stop = threading.Event()
    failures: list[int | str] = []

    def load(url: str) -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                try:
                    code: int | str = complete(client, url, max_tokens=32)
                except httpx.HTTPError as exc:  # counted as a failure, not a dead load thread
                    code = repr(exc)
                if code != 200:
                    failures.append(code)

    threads = [threading.Thread(target=load, args=(cluster.gateway_url(i % 2),)) for i in range(6)]
    for t in threads:
        t.start()
    observed: list[float] = []
    try:

        def scaled() -> bool:
            status = cluster.status(0, "tiny-out")
            decision = status.get("lastScalingDecision") or {}
            observed.append(max(decision.get("observedStable", 0.0), decision.get("observedPanic", 0.0)))
            return bool(status.get("readyReplicas") == 2)

        wait_until(scaled, 120, lambda: f"never scaled to 2 (observed {observed[-10:]})\n{cluster.logs()}")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert max(observed) > 4.0, observed  # more than either gateway alone could report (3)

    # The new replica reached both gateways within ~100 ms of the controller knowing it was ready.
    status = cluster.status(0, "tiny-out")
    ready_at = {r["id"]: r["phaseTimes"]["ready"] for r in status["replicas"] if "ready" in r["phaseTimes"]}
    newest = max(ready_at, key=lambda rid: ready_at[rid])
    for gateway in cluster.gateways:
        match = re.search(rf"applied at (\d+\.\d+): ready replicas \[[^\]]*'{newest}'", gateway.text())
        assert match is not None, gateway.text()[-3000:]
        lag = float(match.group(1)) - ready_at[newest]
        print(f"{gateway.name}: replica {newest} routed {lag * 1000:.0f} ms after the controller saw it ready")
        assert lag < 0.15, lag


def test_api_alone_over_the_same_database_reaches_the_leader(cluster: Cluster) -> None:
    port = free_port()
    args = ["--data-dir", str(cluster.root / "api"), "api", "--api-port", str(port), "--database-url", cluster.db_url]
    proc = Proc("api", args, cluster.root / "api.log", cluster.env)
    try:
        url = f"http://127.0.0.1:{port}/v1alpha1/inference"
        headers = {"authorization": f"Bearer {TOKEN}"}

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/deployments", headers=headers).status_code == 200
            return False

        wait_until(up, 60, lambda: f"tide api did not start:\n{proc.text()}")
        spec = {**SPEC, "name": "tiny-idle", "autoscaling": {"min": 0, "max": 1, "initialScale": 0}}
        response = httpx.post(f"{url}/deployments", json=spec, headers=headers)
        assert response.status_code == 201, response.text
        created = time.monotonic()

        def reconciled() -> bool:
            status = httpx.get(f"{url}/deployments/tiny-idle", headers=headers).json()["deployment"]["status"]
            return bool(status.get("status") == "STATUS_READY")

        wait_until(reconciled, 10, lambda: f"the leader never reconciled it\n{cluster.logs()}")
        print(f"a change through `tide api` reconciled by the leader in {time.monotonic() - created:.1f} s")
        assert httpx.delete(f"{url}/deployments/tiny-idle", headers=headers).status_code in (200, 202)
    finally:
        proc.kill(signal.SIGTERM)


def test_standby_takes_over_after_the_leader_is_killed(cluster: Cluster) -> None:
    old = {r["id"] for r in cluster.status(0, "tiny-out")["replicas"]}  # also notes pids for the clean-up
    assert cluster.leader() == 0
    cluster.controllers[0].kill(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: cluster.leader() == 1, 15, lambda: f"standby never led\n{cluster.logs()}")
    print(f"standby elected {time.monotonic() - killed:.1f} s after kill -9")
    # The new leader starts its own replicas (the old ones were the dead controller's).

    def new_replica_ready() -> bool:
        replicas = cluster.status(1, "tiny-out").get("replicas", [])
        return any(r["id"] not in old and r["phase"] == "ready" for r in replicas)

    wait_until(
        new_replica_ready,
        120,
        lambda: f"no ready replica under the new leader\n{cluster.logs()}",
    )
    with httpx.Client(timeout=60) as client:
        for i in range(2):
            assert complete(client, cluster.gateway_url(i)) == 200, cluster.logs()
