"""Throughput of the built-in engine at several concurrency levels, over real HTTP on loopback.

`python -m tide.engines.builtin.bench --model-dir DIR [--dtype bfloat16] [--concurrency 1 8 16]`
starts the engine as a child process on a free port, sends `concurrency` greedy completions at once
(each `--tokens` long, best of `--repeats`), prints tokens/s summed over the batch and the ratio to
concurrency 1 (measured in the same run), then stops the engine. Bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tide.engines.events import parse_event


def _start(model_dir: pathlib.Path, dtype: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tide.engines.builtin",
            "--model-dir",
            str(model_dir),
            "--port",
            "0",
            "--served-model-name",
            "bench",
            "--dtype",
            dtype,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the engine exits (ending this loop) if it cannot start
        event = parse_event(line.strip())
        if event and event.get("phase") == "ready":
            return proc, int(event["port"])
    raise RuntimeError(f"engine exited with {proc.wait()} before it was ready")


def _run_batch(base_url: str, concurrency: int, tokens: int) -> float:
    def one(index: int) -> int:
        body = {"model": "bench", "prompt": f"def function_{index}(x):", "max_tokens": tokens, "temperature": 0}
        response = httpx.post(f"{base_url}/v1/completions", json=body, timeout=120)
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        generated = sum(pool.map(one, range(concurrency)))
    return generated / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tide.engines.builtin.bench", description=__doc__)
    parser.add_argument("--model-dir", type=pathlib.Path, required=True)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    proc, port = _start(args.model_dir, args.dtype)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _run_batch(base_url, max(args.concurrency), 8)  # warm-up
        baseline: float | None = None
        print(f"dtype {args.dtype}, {args.tokens} new tokens per request, best of {args.repeats}")
        for concurrency in args.concurrency:
            rate = max(_run_batch(base_url, concurrency, args.tokens) for _ in range(args.repeats))
            baseline = baseline or rate
            print(f"  {concurrency:3d} in flight: {rate:7.0f} tok/s summed  ({rate / baseline:.1f}x)", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
