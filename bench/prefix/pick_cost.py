"""The gateway's per-request routing work, in process: least-loaded's pick vs prefix-aware's naming + pick.

The bench's bodies (long_prompts.lua: 8 documents x 4 questions, ~8 KB), 4 replicas, 64 requests in flight
(each pick takes a replica's slot, the oldest of the 64 gives its back). `python bench/prefix/pick_cost.py
POLICY N` runs N requests; under valgrind's callgrind, the difference between two counts (N and 2N) is the
instructions per request, deterministic (bench/prefix/pick_instructions.sh does this). `python
bench/prefix/pick_cost.py time` times both policies, alternating, and prints the fastest of 15 rounds of
20,000 requests each (the least disturbed by whatever else runs), in ns per request.
"""

from __future__ import annotations

import sys
import time
from collections import deque

import orjson

from tide.gateway.balancing import DeploymentState, ReplicaState
from tide.gateway.prefix import prompt_chunks
from tide.gateway.routes import DeploymentRoute, ReplicaEndpoint
from tide.spec.routing import LEAST_LOADED, PREFIX_AWARE


def bench_bodies() -> list[bytes]:
    """long_prompts.lua's 32 bodies, byte for byte."""
    bodies = []
    for i in range(1, 33):
        d = i % 8
        doc = f"Document {d} says the quick brown fox jumps over lazy dog number {d}. " * 120
        bodies.append(
            b'{"model":"tiny","messages":[{"role":"system","content":"' + doc.encode()
            + b'"},{"role":"user","content":"question ' + str(i).encode() + b'"}],"max_tokens":8}'
        )  # fmt: skip
    return bodies


def run(routing: str, requests: int) -> None:
    route = DeploymentRoute(
        "d", "m", 100, tuple(ReplicaEndpoint(f"r{i}", "http://127.0.0.1:18000/v1") for i in range(4)), routing=routing
    )
    state = DeploymentState(route)
    state.replace_replicas([ReplicaState(endpoint, state) for endpoint in route.replicas])
    bodies = [(raw, orjson.loads(raw)) for raw in bench_bodies()]
    in_flight: deque[ReplicaState] = deque()
    prefix_aware = state.prefix_policy is not None
    for n in range(requests):
        raw, body = bodies[n % 32]
        # What the gateway does per request for the pick (gateway.py, then the queue's admit)
        prefix = prompt_chunks(raw, body) if prefix_aware and len(state.replicas) > 1 else ()
        replica = state.pick_replica(prefix=prefix)
        assert replica is not None
        replica.in_flight += 1
        in_flight.append(replica)
        if len(in_flight) > 64:
            in_flight.popleft().in_flight -= 1


def fastest(rounds: int = 15, requests: int = 20_000) -> dict[str, float]:
    best = {LEAST_LOADED: float("inf"), PREFIX_AWARE: float("inf")}
    for _ in range(rounds):
        for routing in best:
            started = time.perf_counter()
            run(routing, requests)
            best[routing] = min(best[routing], (time.perf_counter() - started) / requests * 1e9)
    return best


if __name__ == "__main__":
    if sys.argv[1] == "time":
        best = fastest()
        for routing, ns in best.items():
            print(f"{routing:<14} {ns:8.0f} ns per request (routing work, fastest of 15 rounds)")
        print(f"prefix-aware adds {best[PREFIX_AWARE] - best[LEAST_LOADED]:.0f} ns per request")
    else:
        run({"least-loaded": LEAST_LOADED, "prefix-aware": PREFIX_AWARE}[sys.argv[1]], int(sys.argv[2]))
