"""Tide on a real Ray cluster (tests/ray/conftest.py): the inventory is the cluster's nodes, a replica
lands on a node of its type, GPU count and allowed zone and serves through the gateway, and when that
node dies the replica is reported lost and replaced on another matching node."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess, free_port
from tests.ray.cluster import LocalRayCluster
from tests.ray.conftest import h100_spec
from tests.support.waiting import wait_until

H100_A = "(us-east-04a, h100-2x)"
H100_B = "(us-east-04b, h100-2x)"


def chat(tide: TideProcess, model: str = "tiny-ray") -> dict[str, Any]:
    response = httpx.post(
        f"{tide.gateway_url}/chat/completions",
        # Greedy: sampled at temperature 1, the random-weight model can pick its end token first (empty content).
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8, "temperature": 0},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["choices"][0]["message"]["content"]
    return body


def only_replica(status: dict[str, Any]) -> dict[str, Any]:
    live = [r for r in status["replicas"] if r["phase"] == "ready"]
    assert len(live) == 1, status
    return live[0]


def wait_for_condition(tide: TideProcess, deployment: str, kind: str, text: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = tide.status(deployment)
        for condition in status.get("conditions", []):
            if condition["type"] == kind and text in condition["message"]:
                return dict(condition)
        time.sleep(0.1)
    raise AssertionError(f"no {kind} condition with {text!r} within {timeout}s; last status {status}")


def test_parameters_and_claims_come_from_the_clusters_nodes(tide: TideProcess) -> None:
    with tide.api() as api:
        params = api.get("/deployments/parameters").json()
        assert params["zoneInstanceTypes"] == {
            "us-east-04a": ["h100-2x", "l40-1x"],
            "us-east-04b": ["h100-2x"],
            "us-west-01a": ["h100-2x"],
        }
        types = {t["id"]: t for t in params["resourceParameters"]["instanceTypes"]}
        assert (types["h100-2x"]["gpuModel"], types["h100-2x"]["gpuCount"]) == ("H100", 2)
        assert (types["l40-1x"]["gpuModel"], types["l40-1x"]["gpuCount"]) == ("L40S", 1)

        # Specs and claims are checked against what the nodes offer.
        too_big = {**h100_spec(), "name": "too-big", "resources": {"instanceType": "l40-1x", "gpuCount": 2}}
        response = api.post("/deployments", json=too_big)
        assert response.status_code == 400 and "exceeds the 1 GPUs of instance type l40-1x" in response.text
        claims = {c["spec"]["id"]: c for c in api.get("/capacityclaims").json()["capacityClaims"]}
        assert claims["team-h100"]["status"]["allocatedInstances"] == 1


def test_the_management_api_alone_validates_against_the_clusters_nodes(tide: TideProcess, tmp_path: Path) -> None:
    """`tide api` over the same database has no Ray connection: it answers with the inventory the acting
    controller published, not with this machine's."""
    port = free_port()
    log = (tmp_path / "api.log").open("ab")
    args = ["--data-dir", str(tmp_path), "api", "--api-port", str(port), "--database-url",
            f"sqlite:///{tide.data_dir / 'tide.db'}"]  # fmt: skip
    env = {**tide.env(), "TIDE_API_TOKEN": tide.token}
    process = subprocess.Popen([sys.executable, "-m", "tide.cli", *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}/v1alpha1/inference"
        headers = {"authorization": f"Bearer {tide.token}"}
        deadline = time.monotonic() + 60
        params: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{url}/deployments/parameters", headers=headers)
                if response.status_code == 200:
                    params = response.json()
                    break
            time.sleep(0.2)
        assert params["zoneInstanceTypes"] == {
            "us-east-04a": ["h100-2x", "l40-1x"],
            "us-east-04b": ["h100-2x"],
            "us-west-01a": ["h100-2x"],
        }
        too_big = {**h100_spec(), "name": "too-big", "resources": {"instanceType": "l40-1x", "gpuCount": 2}}
        response = httpx.post(f"{url}/deployments", json=too_big, headers=headers)
        assert response.status_code == 400 and "exceeds the 1 GPUs of instance type l40-1x" in response.text
        listed = httpx.get(f"{url}/capacityclaims", headers=headers).json()["capacityClaims"]
        claims = {c["spec"]["id"]: c for c in listed}
        assert claims["team-h100"]["status"]["allocatedInstances"] == 1
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_replica_runs_on_a_node_of_its_type_gpus_and_zone_and_serves(
    tide: TideProcess, ray_cluster: LocalRayCluster
) -> None:
    tide.apply(h100_spec())
    status = tide.wait_for("tiny-ray", "STATUS_READY", ready=1, timeout=120)
    replica = only_replica(status)
    # The claim's first zone, an h100-2x, and both of its GPUs assigned by Ray (the actor reports them).
    assert H100_A in replica["message"] and "virtual GPUs 0,1" in replica["message"], replica
    # The weights were fetched into that node's cache, and no other node's.
    cached = {name: node.cached_weights() for name, node in ray_cluster.nodes.items()}
    assert cached["w1"] and not (cached["head"] or cached["w2"] or cached["w3"]), cached

    chat(tide)
    logs = tide.cli("logs", "tiny-ray").stdout
    assert "tide.engines.builtin" in logs  # the engine's log came back from the node


def warm_pool_metrics(tide: TideProcess) -> dict[str, float]:
    """tide_warm_pool_* samples of /metrics, by name and label value (e.g. "processes/warm", "takes/taken")."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{tide.api_url}/metrics", timeout=30).text.splitlines():
        for name, key in (
            ("tide_warm_pool_processes{state=", "processes"),
            ("tide_warm_pool_takes_total{outcome=", "takes"),
        ):
            if line.startswith(name):
                label, value = line[len(name) :].split("}")
                out[key + "/" + label.strip('"')] = float(value)
    return out


def test_a_replica_takes_a_spare_hosts_warm_engine_its_gpus_stay_booked_and_the_spare_is_refilled(
    tide: TideProcess, ray_cluster: LocalRayCluster
) -> None:
    """`tide up --warm-pool 1` (the default): one spare host per node, its engine process already warm."""
    nodes = len(ray_cluster.nodes)
    wait_until(lambda: warm_pool_metrics(tide).get("processes/warm") == nodes, 180, "a warm spare on every node")
    taken = warm_pool_metrics(tide)["takes/taken"]

    tide.apply(h100_spec())
    replica = only_replica(tide.wait_for("tiny-ray", "STATUS_READY", ready=1, timeout=120))
    assert H100_A in replica["message"] and "virtual GPUs 0,1" in replica["message"], replica
    # Its engine is the spare's pooled process: the pid the replica runs under is the one the pool started.
    logs = tide.cli("logs", "tiny-ray").stdout
    assert f"--- from the warm pool (pid {replica['pid']})" in logs, logs[-2000:]
    assert warm_pool_metrics(tide)["takes/taken"] == taken + 1
    chat(tide)
    # The spare held no GPU; the replica's two are held in Ray's books while it runs, and come back after.
    assert ray_cluster.available_gpus()["w1"] == 0.0
    # The node gets a new spare in the background; the replica is not one of them.
    wait_until(lambda: warm_pool_metrics(tide).get("processes/warm") == nodes, 180, "the spare refilled")
    tide.delete_all()
    wait_until(lambda: ray_cluster.available_gpus()["w1"] == 2.0, 60, "w1's GPUs back in Ray's books")


def test_a_lost_node_has_its_replica_replaced_on_another_matching_node(
    tide: TideProcess, ray_cluster: LocalRayCluster
) -> None:
    tide.apply(h100_spec())
    first = only_replica(tide.wait_for("tiny-ray", "STATUS_READY", ready=1, timeout=120))
    assert H100_A in first["message"], first

    lost_at = time.monotonic()
    ray_cluster.kill("w1")
    lost = wait_for_condition(tide, "tiny-ray", "ReplicaLost", "was lost", timeout=30)
    detected_s = time.monotonic() - lost_at
    assert f"replica {first['id']} lost" in lost["message"] and H100_A in lost["message"], lost

    # Replaced within the claim's zones (us-east-04b; never us-west-01a) on an h100-2x, serving again.
    status = tide.wait_for("tiny-ray", "STATUS_READY", ready=1, timeout=120)
    replaced = only_replica(status)
    assert replaced["id"] != first["id"] and H100_B in replaced["message"], replaced
    # Ready again: the condition clears; and a lost node is not the replica's crash (no backoff, no crash count).
    assert not [c for c in status["conditions"] if c["type"] in ("ReplicaLost", "ReplicaCrashed")], status
    chat(tide)
    assert ray_cluster.nodes["w2"].cached_weights() and not ray_cluster.nodes["w3"].cached_weights()

    # The lost node left the inventory: its zone now offers only what the others have.
    with tide.api() as api:
        zones = api.get("/deployments/parameters").json()["zoneInstanceTypes"]
    assert zones["us-east-04a"] == ["l40-1x"], zones
    print(f"node loss noticed in {detected_s:.1f}s, replaced and ready {time.monotonic() - lost_at:.1f}s after it")
