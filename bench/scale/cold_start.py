"""Request at zero -> first byte, side by side: cold start, warm engine pool, parked replica.

Usage: python bench/scale/cold_start.py [--repeats 5] [--modes cold,pool,parked] [--model-dir DIR]

One run, the same machine and model (the tiny one), one `tide up` per mode (each on free loopback ports,
with a temporary data dir), the deployment of `run.py` (builtin engine, min 0, max 1, knative profile,
short window) in each:

- cold:   `tide up --warm-pool 0`, parking off: the engine process starts from nothing.
- pool:   `tide up --warm-pool 1`, parking off: a pre-started engine (runtime imported) loads the model.
          Before each request the script waits until /metrics says a pooled engine is warm again.
- parked: `tide up --warm-pool 0`, `autoscaling.parking.enabled: true`: the scale-down parks the replica;
          the request wakes it.

Each sample: at zero (or parked), one streaming completion with max_tokens=1, timed from send to the
response head (the first byte) at the client. Between samples the deployment goes back to zero (or parked).
Prints per-mode samples, median and range, and the ratio of each median to the cold start's. Exits 1 if
a request failed, 2 on the hard timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEPLOYMENT, HardTimeout, Tide, load_average, on_alarm

from tide.model.tiny import make_tiny_model

MODES = ("cold", "pool", "parked")


def spec(parking: bool) -> dict[str, Any]:
    return {
        "name": DEPLOYMENT,
        "model": {"name": DEPLOYMENT, "bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {
            "min": 0,
            "max": 1,
            "initialScale": 0,
            "concurrency": 2,
            "profile": "knative",
            "window": "6s",
            "scaleToZeroGracePeriod": "1s",
            "parking": {"enabled": parking, "retention": "1h"},
        },
    }


def wait(tide: Tide, what: str, check: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = tide.status()
        if check(status):
            return status
        time.sleep(0.2)
    raise RuntimeError(f"{DEPLOYMENT} never {what} in {timeout:.0f} s; last status {status}")


def at_zero(status: dict[str, Any]) -> bool:
    return status.get("state") == "STATUS_READY" and not status.get("replicas") and not status["readyReplicas"]


def parked(status: dict[str, Any]) -> bool:
    replicas = status.get("replicas") or []
    return status["readyReplicas"] == 0 and len(replicas) == 1 and replicas[0]["phase"] == "parked"


def pool_warm(tide: Tide) -> bool:
    text = httpx.get(f"http://127.0.0.1:{tide.api_port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('tide_warm_pool_processes{state="warm"}'):
            return float(line.rsplit(" ", 1)[1]) >= 1
    return False


def first_byte(tide: Tide) -> float:
    body = {"model": DEPLOYMENT, "prompt": "hello", "max_tokens": 1, "stream": True}
    with httpx.Client(timeout=120) as client:
        sent = time.perf_counter()
        with client.stream("POST", f"{tide.gateway_base}/completions", json=body) as response:
            head = time.perf_counter()
            data = response.read()
            if response.status_code != 200 or b"[DONE]" not in data:
                raise RuntimeError(f"request failed: {response.status_code} {data[:300]!r}")
    return head - sent


@contextlib.contextmanager
def tide_for(model_dir: Path, extra: tuple[str, ...], keep: bool) -> Iterator[Tide]:
    root = Path(tempfile.mkdtemp(prefix="tide-cold-start-"))
    tide: Tide | None = None
    try:
        shutil.copytree(model_dir, root / "buckets" / "models" / "tiny")
        tide = Tide(root, root / "buckets", extra)
        tide.start()
        yield tide
    finally:
        if tide is not None:
            tide.stop()
        if keep:
            print(f"  kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def measure(mode: str, model_dir: Path, repeats: int, keep: bool) -> list[float]:
    extra = ("--warm-pool", "1" if mode == "pool" else "0")
    samples: list[float] = []
    with tide_for(model_dir, extra, keep) as tide:
        tide.apply(spec(parking=mode == "parked"))
        wait(tide, "at zero", at_zero, 60)
        if mode == "parked":  # the first start is cold; it parks on the way down
            first_byte(tide)
            wait(tide, "parked", parked, 120)
        for i in range(repeats):
            if mode == "pool":
                deadline = time.monotonic() + 120
                while not pool_warm(tide):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the warm pool did not refill in 120 s")
                    time.sleep(0.2)
            time.sleep(0.5)  # let the zero settle (routes, autoscaler state)
            seconds = first_byte(tide)
            samples.append(seconds)
            print(f"  {mode:<6} #{i + 1}  send -> first byte {1000 * seconds:8.1f} ms", flush=True)
            wait(tide, "back down", parked if mode == "parked" else at_zero, 120)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="samples per mode (medians of these)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: cold, pool, parked")
    parser.add_argument("--model-dir", type=Path, help="a tiny model already built (default: build one)")
    parser.add_argument("--timeout", type=float, default=900, help="hard limit for the whole run (s)")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs (server and replica logs)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes takes a comma-separated list of {', '.join(MODES)}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_alarm)
    signal.alarm(max(1, int(args.timeout)))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"cpus {os.cpu_count()}, load average at start {load_average()}", flush=True)
    results: dict[str, list[float]] = {}
    built: Path | None = None
    try:
        model_dir = args.model_dir
        if model_dir is None:
            built = Path(tempfile.mkdtemp(prefix="tide-cold-start-model-"))
            model_dir = make_tiny_model(built / "tiny", log=lambda _line: None)
        for mode in modes:
            print(f"\n{mode}:", flush=True)
            results[mode] = measure(mode, model_dir, args.repeats, args.keep)
    except HardTimeout:
        print(f"hard timeout ({args.timeout:.0f} s) or SIGTERM: stopped everything", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        if built is not None:
            shutil.rmtree(built, ignore_errors=True)

    print(f"\nrequest at zero -> first byte (median of {args.repeats}; load average now {load_average()}):")
    baseline = statistics.median(results["cold"]) if "cold" in results else None
    for mode, samples in results.items():
        median = statistics.median(samples)
        ratio = f"  {median / baseline:5.2f}x cold" if baseline else ""
        print(
            f"  {mode:<6} median {median:6.3f} s  range {min(samples):6.3f}-{max(samples):6.3f} s{ratio}  "
            f"samples {[round(s, 3) for s in samples]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
