"""A real local Ray cluster of four nodes, and a real `tide up --backend ray` joined to it.

| node | instance type | GPUs (virtual) | zone        | class     | declared with |
|------|---------------|----------------|-------------|-----------|---------------|
| head | l40-1x        | 1              | us-east-04a | on_demand | labels        |
| w1   | h100-2x       | 2              | us-east-04a | reserved  | labels        |
| w2   | h100-2x       | 2              | us-east-04b | reserved  | resources     |
| w3   | h100-2x       | 2              | us-west-01a | reserved  | labels        |

The tier skips, saying why, when Ray is not installed; with TIDE_REQUIRE_RAY=1 (CI) it fails instead.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import TideProcess, make_buckets, tiny_spec
from tests.ray.cluster import LocalRayCluster
from tide.model.tiny import make_tiny_model

CLAIM_ZONES = ["us-east-04a", "us-east-04b"]


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        reason = "ray is not installed (pip install -e '.[ray]'; ./scripts/setup.sh installs it)"
        if os.environ.get("TIDE_REQUIRE_RAY") == "1":
            pytest.fail(f"TIDE_REQUIRE_RAY=1 but {reason}")
        pytest.skip(reason)


def labels(instance_type: str, zone: str, capacity_class: str, gpu_model: str) -> dict[str, str]:
    return {
        "tide.io/instance-type": instance_type,
        "tide.io/zone": zone,
        "tide.io/capacity-class": capacity_class,
        "tide.io/gpu-model": gpu_model,
    }


# Package scope: the four Ray nodes stop when tests/ray is done instead of idling through the rest of the run.
@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[LocalRayCluster]:
    require_ray()
    cluster = LocalRayCluster()
    try:
        cluster.start_node("head", head=True, gpus=1, labels=labels("l40-1x", "us-east-04a", "on_demand", "L40S"))
        cluster.wait_for_nodes(1)
        cluster.start_node("w1", gpus=2, labels=labels("h100-2x", "us-east-04a", "reserved", "H100"))
        cluster.start_node(
            "w2",
            gpus=2,
            resources={
                "tide-instance:h100-2x": 1,
                "tide-zone:us-east-04b": 1,
                "tide-class:reserved": 1,
                "accelerator_type:H100": 1,
            },
        )
        cluster.start_node("w3", gpus=2, labels=labels("h100-2x", "us-west-01a", "reserved", "H100"))
        cluster.wait_for_nodes(4)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="package")
def tide_ray(tmp_path_factory: pytest.TempPathFactory, ray_cluster: LocalRayCluster) -> Iterator[TideProcess]:
    root = tmp_path_factory.mktemp("tide-ray")
    buckets = make_buckets(root, make_tiny_model(root / "model" / "tiny"))
    server = TideProcess(root / "data", buckets, extra_args=("--backend", "ray", "--ray-address", ray_cluster.address))
    server.data_dir.mkdir()
    server.start()
    try:
        with server.api() as api:
            claim = {
                "id": "team-h100",
                "resources": {"instanceId": "h100-2x", "instanceCount": 1, "zones": CLAIM_ZONES},
            }
            response = api.post("/capacityclaims", json=claim)
            assert response.status_code in (200, 201), response.text
        yield server
    finally:
        server.stop()


@pytest.fixture()
def tide(tide_ray: TideProcess) -> Iterator[TideProcess]:
    """The shared server, emptied of deployments after the test."""
    yield tide_ray
    if tide_ray.process is not None:
        tide_ray.delete_all()


def h100_spec() -> dict[str, Any]:
    """The tiny model on 2 GPUs of an h100-2x, on reserved capacity (the claim's zones, in its order)."""
    return tiny_spec(
        "tiny-ray",
        resources={"instanceType": "h100-2x", "gpuCount": 2},
        autoscaling={"min": 1, "max": 1, "capacityClasses": ["CAPACITY_CLASS_RESERVED"]},
    )
