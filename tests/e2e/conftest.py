"""A real `tide up` process on loopback ports, with the tiny model in a local bucket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tide.model.tiny import make_tiny_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TideProcess:
    """`tide up` as a user runs it, plus the clients a test needs."""

    def __init__(self, data_dir: Path, buckets_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args
        self.data_dir = data_dir
        self.buckets_dir = buckets_dir
        self.gateway_port = free_port()
        self.api_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/v1"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TIDE_BUCKETS_DIR": str(self.buckets_dir),
            "TIDE_API_URL": self.api_url,
            "TIDE_DATA_DIR": str(self.data_dir),
        }

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tide.cli",
                "--data-dir",
                str(self.data_dir),
                "up",
                "--gateway-port",
                str(self.gateway_port),
                "--api-port",
                str(self.api_port),
                "--drain-timeout",
                "10",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.server_log()
            token_file = self.data_dir / "api-token"
            if token_file.exists():
                self.token = token_file.read_text().strip()
                try:
                    if self.api().get("/deployments").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"tide up did not start:\n{self.server_log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def server_log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.api_url}/v1alpha1/inference",
            headers={"authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "tide.cli", "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"tide {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def apply(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create or update; returns the deployment as the API shapes it, `{"spec": {"id", ...}, "status"}`."""
        with self.api() as api:
            existing = api.get(f"/deployments/{spec.get('id', spec['name'])}")
            if existing.status_code == 200:
                response = api.patch(f"/deployments/{existing.json()['deployment']['spec']['id']}", json=spec)
            else:
                response = api.post("/deployments", json=spec)
            assert response.status_code in (200, 201), response.text
            return dict(response.json()["deployment"])

    def status(self, deployment_id: str) -> dict[str, Any]:
        """`deployment.status` (`status` is the state, as the hosted API names it)."""
        with self.api() as api:
            response = api.get(f"/deployments/{deployment_id}")
            assert response.status_code == 200, response.text
            status = dict(response.json()["deployment"]["status"])
        # Bridge for tests written before the hosted shape, which read the state as `state`.
        status.setdefault("state", status.get("status"))
        return status

    def wait_for(self, deployment_id: str, state: str, timeout: float = 90, ready: int | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(deployment_id)
            if status.get("status") == state and (ready is None or status.get("readyReplicas") == ready):
                return status
            time.sleep(0.2)
        raise AssertionError(
            f"{deployment_id} never reached {state} (ready={ready}); last status {status}\n{self.server_log()}"
        )

    def delete_all(self) -> None:
        with self.api() as api:
            for item in api.get("/deployments").json()["deployments"]:
                api.delete(f"/deployments/{item['spec']['id']}")
            deadline = time.monotonic() + 60
            while api.get("/deployments").json()["deployments"] and time.monotonic() < deadline:
                time.sleep(0.2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


def make_buckets(root: Path, tiny_model: Path) -> Path:
    buckets = root / "buckets"
    shutil.copytree(tiny_model, buckets / "models" / "tiny")
    return buckets


# Package scope: this `tide up` stops when tests/e2e is done instead of running through the later folders.
@pytest.fixture(scope="package")
def tide(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[TideProcess]:
    root = tmp_path_factory.mktemp("tide")
    buckets = make_buckets(root, tiny_model)
    (buckets / "models" / "no-config").mkdir(parents=True)
    (buckets / "models" / "no-config" / "README.md").write_text("not a model")
    server = TideProcess(root / "data", buckets)
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def clean_tide(tide: TideProcess) -> Iterator[TideProcess]:
    """The shared server, emptied of deployments after the test."""
    yield tide
    if tide.process is not None:
        tide.delete_all()


def tiny_spec(name: str = "tiny-chat", **overrides: Any) -> dict[str, Any]:
    """A deployment of the tiny model in the hosted shape; its model name is `name` (what requests send).
    `weights={"bucket": ..., "path": ...}` (the old shape) is still taken and moved into `model`."""
    weights = dict(overrides.pop("weights", None) or {})
    model = {"name": name, "bucket": weights.pop("bucket", "models"), "path": weights.pop("path", "tiny")}
    model.update(overrides.pop("model", None) or {})
    spec: dict[str, Any] = {
        "name": name,
        "model": model,
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": 1, "max": 1},
    }
    if weights:
        spec["weights"] = weights
    spec.update(overrides)
    return spec


# Two virtual 1-GPU instances (GPU books without GPUs: the replicas run on the CPU), for the tests of
# who gets GPUs: capacity, priority, parking.
VIRTUAL_GPU_FLEET = """
instanceTypes:
  - {id: h100-virtual, gpuModel: H100, gpus: 1, memoryGib: 80}
instances:
  - {type: h100-virtual, zone: us-east-04a, count: 2}
"""


@pytest.fixture()
def fleet(tmp_path: Path, tiny_model: Path) -> Iterator[TideProcess]:
    """A `tide up` of its own over VIRTUAL_GPU_FLEET."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(VIRTUAL_GPU_FLEET)
    server = TideProcess(tmp_path / "data", make_buckets(tmp_path, tiny_model), ("--inventory", str(inventory)))
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()
