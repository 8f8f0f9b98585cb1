"""A replica start on Ray, side by side: a new replica actor vs a spare host (the Ray warm pool).

Usage: PYTHONPATH=. python bench/scale/ray_start.py [--repeats 5]

One run, one machine: a one-node Ray cluster (`ray start --head`, 2 virtual GPUs, declared an h100-2x),
this process its driver, two Ray backends on it sharing its inventory:

- cold:  `warm_pool=0`: the start creates a replica actor, which launches a new engine process.
- spare: `warm_pool=1`: the start takes the node's spare host (its engine process already has torch and
         transformers imported) and books the GPUs with a GpuHold actor. Before each sample the script
         waits until the refilled spare is warm again.

Each sample: the tiny model on 2 (virtual) GPUs, timed from `start` to READY (weights in the node's cache,
engine loaded, health answered), then stopped. Samples alternate cold and spare. Prints the samples, the
median and range of each, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.ray.cluster import LocalRayCluster
from tide.backends.base import ReplicaLaunch, ReplicaPhase
from tide.backends.ray import RayOptions, connect, list_nodes
from tide.backends.ray.backend import RayBackend
from tide.backends.ray.inventory import RayInventory
from tide.model.tiny import make_tiny_model
from tide.server import catalog_from_inventory
from tide.spec import parse_deployment
from tide.weights import StorageConfig

LABELS = {
    "tide.io/instance-type": "h100-2x",
    "tide.io/zone": "bench-a",
    "tide.io/capacity-class": "on_demand",
    "tide.io/gpu-model": "H100",
}


async def start_to_ready(backend: RayBackend, launch: ReplicaLaunch) -> float:
    began = time.monotonic()
    state = await backend.start(launch)
    while not (state.phase is ReplicaPhase.READY or state.phase.terminal):
        await asyncio.sleep(0.02)
    took = time.monotonic() - began
    if state.phase is not ReplicaPhase.READY:
        raise SystemExit(f"{launch.replica_id} did not start: {state.phase.value} {state.message}")
    await backend.stop(launch.replica_id, 5.0)
    backend.forget(launch.replica_id)
    return took


async def spare_ready(backend: RayBackend, node_id: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(s.ready for s in backend.spares.spares(node_id)):
        if time.monotonic() > deadline:
            raise SystemExit(f"no warm spare within {timeout_s:.0f}s")
        await asyncio.sleep(0.1)


async def bench(root: Path, address: str, repeats: int) -> dict[str, list[float]]:
    buckets = root / "buckets"
    make_tiny_model(buckets / "models" / "tiny")
    connect(RayOptions(address))
    inventory = RayInventory(list_nodes)
    inventory.start()
    (node,) = inventory.current().instances
    spec = parse_deployment(
        {
            "name": "tiny-ray",
            "weights": {"bucket": "models", "path": "tiny"},
            "runtime": {"engine": "builtin"},
            "resources": {"instanceType": "h100-2x", "gpuCount": 2},
        },
        catalog_from_inventory(inventory.current()),
    )
    storage = StorageConfig.from_env(local_root=buckets)
    cold = RayBackend(root / "cold", storage, inventory, warm_pool=0)
    spare = RayBackend(root / "spare", storage, inventory, warm_pool=1)
    spare.start_warm_pool()
    samples: dict[str, list[float]] = {"cold": [], "spare": []}
    try:
        # One unmeasured start first: the weights land in the node's cache for both.
        await start_to_ready(cold, ReplicaLaunch("tiny-ray", "warmup", spec, instance_id=node.id))
        for i in range(repeats):
            samples["cold"].append(
                await start_to_ready(cold, ReplicaLaunch("tiny-ray", f"c{i}", spec, instance_id=node.id))
            )
            await spare_ready(spare, node.id)
            launch = ReplicaLaunch("tiny-ray", f"s{i}", spec, instance_id=node.id)
            samples["spare"].append(await start_to_ready(spare, launch))
            print(f"sample {i + 1}: cold {samples['cold'][-1]:.2f}s spare {samples['spare'][-1]:.2f}s", flush=True)
        if spare.spares.taken_total != repeats:
            raise SystemExit(f"the spare backend took {spare.spares.taken_total} spares, not {repeats}")
    finally:
        await spare.spares.close()
        await cold.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cluster = LocalRayCluster()
    try:
        cluster.start_node("head", head=True, gpus=2, labels=LABELS)
        cluster.wait_for_nodes(1)
        with tempfile.TemporaryDirectory(prefix="tide-ray-bench") as root:
            samples = asyncio.run(bench(Path(root), cluster.address, args.repeats))
    finally:
        cluster.stop()
    medians = {mode: statistics.median(values) for mode, values in samples.items()}
    for mode, values in samples.items():
        listed = " ".join(f"{v:.2f}" for v in values)
        print(f"{mode:5}: median {medians[mode]:.2f}s range {min(values):.2f}-{max(values):.2f}s  [{listed}]")
    print(f"spare / cold: {medians['spare'] / medians['cold']:.2f}  (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
