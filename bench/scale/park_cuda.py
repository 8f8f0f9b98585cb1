"""Park and wake of the built-in engine on CUDA: seconds and GB/s, weights to host memory and back.

Usage (on a machine with an NVIDIA GPU and a CUDA build of torch):

    python bench/scale/park_cuda.py                      # a ~1.1 B-parameter Llama of random weights (~2.2 GB bf16)
    python bench/scale/park_cuda.py --model-dir DIR      # a Hugging Face causal-LM directory of your own
    python bench/scale/park_cuda.py --layers 40 --hidden 5120 --intermediate 13824   # a bigger synthetic one

Two parts, each `--repeats` times per park level:

1. in process: the engine's own park/wake code (tide.engines.builtin.parking) on a model loaded by the
   engine's loader: level 1 (scheduler and KV cache dropped, weights to host memory; wake: back to the
   GPU) and level 2 (weights dropped; wake: read again from the model directory). Prints seconds, GB/s
   and the GPU memory still allocated while parked.
2. over HTTP: a real `python -m tide.engines.builtin --device cuda` replica; POST /tide/park?level=N and
   POST /tide/wake timed at the client, then one completion to show it serves again.

A synthetic model is written (random weights, the tiny model's tokenizer) to a temporary directory.
Exits 1 if a wake did not serve again or a park left the weights on the GPU, 2 without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import httpx


def build_synthetic(out: Path, hidden: int, intermediate: int, layers: int, heads: int, device: str) -> Path:
    """The tiny model's tokenizer and generation config with a bigger Llama of random bf16 weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tide.model.tiny import make_tiny_model

    make_tiny_model(out, log=lambda _line: None)
    raw = json.loads((out / "config.json").read_text())
    raw.update(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 4),
        head_dim=hidden // heads,
    )
    config = LlamaConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]
    (out / "model.safetensors").unlink()
    model.save_pretrained(str(out), safe_serialization=True)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def gpu_bytes(device: str) -> int:
    import torch

    return int(torch.cuda.memory_allocated()) if device == "cuda" else 0


def in_process(model_dir: Path, repeats: int, device: str) -> tuple[list[dict[str, Any]], bool]:

    from tide.engines.builtin import parking
    from tide.engines.builtin.loading import load_model, load_weights, warm_up
    from tide.engines.builtin.main import _scheduler_for

    args = Namespace(max_batch_size=16)
    started = time.perf_counter()
    loaded = load_model(model_dir, dtype="bfloat16", device=device)
    warm_up(loaded)
    print(f"  loaded {parking.weight_bytes(loaded.model) / 1e9:.2f} GB in {time.perf_counter() - started:.2f} s")
    rows: list[dict[str, Any]] = []
    ok = True
    for level in (1, 2):
        for i in range(repeats):
            scheduler = _scheduler_for(loaded, args)
            scheduler.start()
            before = gpu_bytes(device)
            park = parking.park_level1 if level == 1 else parking.park_level2
            parked = park(loaded, scheduler)
            while_parked = gpu_bytes(device)
            if level == 1:
                woke = parking.wake_level1(loaded)
            else:
                woke = parking.wake_level2(
                    loaded, lambda: load_weights(model_dir, dtype="bfloat16", device=loaded.device)
                )
            warm_up(loaded)  # it computes again
            freed = before - while_parked
            ok = ok and while_parked <= 0.05 * before
            row = {
                "level": level,
                "park_s": parked.seconds,
                "park_gbps": parked.gb_per_s,
                "wake_s": woke.seconds,
                "wake_gbps": woke.gb_per_s,
                "gpu_bytes_before": before,
                "gpu_bytes_parked": while_parked,
            }
            rows.append(row)
            print(
                f"  level {level} #{i + 1}: park {parked.seconds:7.3f} s ({parked.gb_per_s:6.1f} GB/s)  "
                f"wake {woke.seconds:7.3f} s ({woke.gb_per_s:6.1f} GB/s)  "
                f"GPU memory {before / 1e9:.2f} GB -> {while_parked / 1e9:.2f} GB parked (freed {freed / 1e9:.2f})",
                flush=True,
            )
    return rows, ok


def over_http(model_dir: Path, repeats: int, device: str) -> tuple[dict[int, tuple[list[float], list[float]]], bool]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "tide.engines.builtin", "--model-dir", str(model_dir), "--port", "0"]
    argv += ["--served-model-name", "m", "--device", device]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    results: dict[int, tuple[list[float], list[float]]] = {1: ([], []), 2: ([], [])}
    ok = True
    try:
        assert proc.stdout is not None
        port = 0
        for line in proc.stdout:
            if line.startswith("TIDE_EVENT ") and json.loads(line[11:]).get("phase") == "ready":
                port = int(json.loads(line[11:])["port"])
                break
        if not port:
            raise RuntimeError("the engine exited before it was ready")
        base = f"http://127.0.0.1:{port}"
        body = {"model": "m", "prompt": "hello", "max_tokens": 4}
        with httpx.Client(timeout=600) as client:
            for level in (1, 2):
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    client.post(f"{base}/tide/park", params={"level": level}).raise_for_status()
                    t1 = time.perf_counter()
                    client.post(f"{base}/tide/wake").raise_for_status()
                    t2 = time.perf_counter()
                    ok = ok and client.post(f"{base}/v1/completions", json=body).status_code == 200
                    results[level][0].append(t1 - t0)
                    results[level][1].append(t2 - t1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a causal-LM directory (default: a synthetic Llama)")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a dry run of the script")
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this script measures park/wake on a GPU (see docs/PARKING.md)", file=sys.stderr)
        return 2
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (dry run: nothing crosses a bus)"
    print(f"device {where}, torch {torch.__version__}", flush=True)
    tmp: Path | None = None
    try:
        model_dir = args.model_dir
        if model_dir is None:
            tmp = Path(tempfile.mkdtemp(prefix="tide-park-cuda-"))
            model_dir = build_synthetic(
                tmp / "model", args.hidden, args.intermediate, args.layers, args.heads, args.device
            )
        print("\nin process (tide.engines.builtin.parking):")
        rows, ok = in_process(model_dir, args.repeats, args.device)
        for level in (1, 2):
            mine = [r for r in rows if r["level"] == level]
            print(
                f"  level {level} median: park {statistics.median(r['park_s'] for r in mine):.3f} s "
                f"({statistics.median(r['park_gbps'] for r in mine):.1f} GB/s), "
                f"wake {statistics.median(r['wake_s'] for r in mine):.3f} s "
                f"({statistics.median(r['wake_gbps'] for r in mine):.1f} GB/s)"
            )
        if not args.skip_http:
            if args.device == "cuda":
                torch.cuda.empty_cache()
            print("\nover HTTP (a real engine process, POST /tide/park and /tide/wake timed at the client):")
            results, http_ok = over_http(model_dir, args.repeats, args.device)
            ok = ok and http_ok
            for level, (parks, wakes) in results.items():
                print(
                    f"  level {level}: park median {statistics.median(parks):.3f} s "
                    f"(range {min(parks):.3f}-{max(parks):.3f}), wake median {statistics.median(wakes):.3f} s "
                    f"(range {min(wakes):.3f}-{max(wakes):.3f})"
                )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nPASS" if ok else "\nFAIL: a park left weights on the GPU or a woken engine did not serve")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
