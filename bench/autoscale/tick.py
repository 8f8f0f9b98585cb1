"""One autoscaler tick over 10,000 deployments: record one second of load, then decide.

Usage: python bench/autoscale/tick.py [--deployments N] [--rounds R]
Prints the median milliseconds of `decide` over all deployments (and of `record`).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from tide.autoscale import PROFILE_NAMES, Autoscaler, resolve_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(7)
    profiles = [p for p in PROFILE_NAMES if p != "development"]
    scalers = [
        Autoscaler(resolve_config(profiles[i % len(profiles)], {}, min_replicas=0, max_replicas=50, concurrency=8))
        for i in range(args.deployments)
    ]
    loads = [rng.choice((0.0, 0.5, 3.0, 20.0, 80.0)) for _ in scalers]
    ready = [1] * len(scalers)
    # Warm the windows with two minutes of history so averages are over full rings.
    for second in range(120):
        for scaler, load in zip(scalers, loads, strict=True):
            scaler.record(float(second), load)
    decide_ms: list[float] = []
    record_ms: list[float] = []
    now = 120.0
    for _ in range(args.rounds):
        for _second in range(2):
            start = time.perf_counter()
            for scaler, load in zip(scalers, loads, strict=True):
                scaler.record(now, load)
            record_ms.append((time.perf_counter() - start) * 1000)
            now += 1.0
        start = time.perf_counter()
        for i, scaler in enumerate(scalers):
            ready[i] = scaler.decide(now, ready[i]).desired
        decide_ms.append((time.perf_counter() - start) * 1000)
    print(f"deployments={args.deployments} rounds={args.rounds}")
    print(f"record (1 s of load, all deployments): median {statistics.median(record_ms):.1f} ms")
    print(f"decide (one tick, all deployments): median {statistics.median(decide_ms):.1f} ms")


if __name__ == "__main__":
    main()
