"""Small synthetic scenarios for the contention tests: 1-GPU instances, steady or bursty request streams."""

from __future__ import annotations

import random
from typing import Any

from tide.sim.contention import Workload
from tide.sim.scenario import Scenario, parse_scenario


def inventory(instances: int, gpus: int = 1) -> dict[str, Any]:
    return {
        "instanceTypes": [{"id": "gpu", "gpuModel": "H100", "gpus": gpus}],
        "instances": [{"type": "gpu", "zone": "z", "count": instances}],
    }


def scenario(instances: int, *deployments: dict[str, Any], gpus: int = 1) -> Scenario:
    defaults = {"trace": "synthetic.csv", "instanceType": "gpu", "profile": "knative", "concurrency": 2}
    return parse_scenario({"inventory": inventory(instances, gpus), "deployments": [defaults | d for d in deployments]})


def steady(rate: float, start: float, end: float, duration: float = 1.5) -> list[tuple[float, float]]:
    """`rate` requests per second from `start` to `end`, each taking `duration` seconds."""
    count = round((end - start) * rate)
    return [(start + i / rate, duration) for i in range(count)]


def workload(*streams: list[tuple[float, float]], origin: float = 0.0) -> Workload:
    requests = sorted(r for stream in streams for r in stream)
    return Workload([a for a, _ in requests], [d for _, d in requests], origin)


def bursty(seed: int, offset: float = 0.0) -> Workload:
    """Bursts of a few hundred requests separated by idle gaps long enough to scale to zero; `offset`
    shifts the same requests later (the scenario's `offset`)."""
    rng = random.Random(seed)
    requests: list[tuple[float, float]] = []
    for burst in range(4):
        begin = offset + burst * 400.0
        requests += [(begin + rng.uniform(0, 90), rng.uniform(0.5, 4.0)) for _ in range(rng.randint(150, 400))]
    return workload(requests, origin=offset)
