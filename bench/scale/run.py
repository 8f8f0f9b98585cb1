"""Scale from zero and back under load, and the platform's own overhead around a cold start.

Usage: python bench/scale/run.py [--requests 5000] [--peak-clients 24] [--max-replicas 4] [--overhead 5]

Starts its own `tide up` on free loopback ports with a temporary data dir, writes the tiny model into a
local bucket, applies a scale-to-zero deployment of the builtin engine (knative profile, short window),
waits for it at zero, then:

1. overhead (`--overhead N` repeats): at zero, one streaming request with max_tokens=1, and from the
   replica's `status.replicas[].phaseTimes` (epoch seconds, same clock as the client's `time.time()`):
   (a) request sent -> `engine_load` (the engine process being spawned): the platform's part of a cold
       start (wake, scheduling, weights lease), target < 100 ms;
   (b) `ready` -> first byte of the response at the client: an upper bound on "ready -> the first queued
       request reaches the replica" (it includes routing-table propagation and one token), target < 50 ms.
   It waits for the deployment to go back to zero between repeats.
2. load: `--requests` completions from zero, the number of concurrent clients ramping 1 (`--start-clients`) -> peak -> 1
   with the requests issued, then waits until the deployment is back at 0 replicas. Prints the outcome by
   status, the peak of ready replicas, a ready/desired timeline (sampled once a second), and client
   latency percentiles. The gateway does not report time spent queued, so the script derives it: with no
   `maxConcurrency`, the gateway queues a request only while the deployment has no ready replica, so
   latency is split by whether a request was sent while no replica was ready (from the replicas'
   `ready` .. `draining`/`stopped` phase times), and its queued time is estimated as the time from
   sending it to the next replica becoming ready.

Exits 1 if any request failed or the deployment did not end at 0 replicas, 2 on the hard timeout
(`--timeout`). Every process it started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tide.model.tiny import make_tiny_model

DEPLOYMENT = "scale-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Tide:
    """`tide up` on free loopback ports, in its own process group, with a temporary data dir."""

    def __init__(self, root: Path, buckets: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.buckets = buckets
        self.api_port = free_port()
        self.gateway_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.engine_pids: set[int] = set()  # replicas seen in status: killed on the way out if still alive

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1alpha1/inference"

    @property
    def gateway_base(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/v1"

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("ab")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TIDE_BUCKETS_DIR": str(self.buckets)}
        env.pop("TIDE_API_TOKEN", None)
        ports = ["--gateway-port", str(self.gateway_port), "--api-port", str(self.api_port)]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tide.cli",
                "--data-dir",
                str(self.data_dir),
                "up",
                *ports,
                "--drain-timeout",
                "10",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        token_file = self.data_dir / "api-token"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tide up exited with {self.process.returncode}:\n{self.server_log()}")
            if token_file.exists():
                self.token = token_file.read_text().strip()
                with contextlib.suppress(httpx.HTTPError):
                    if self.api().get("/deployments").status_code == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"tide up did not start in 60 s:\n{self.server_log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        for pid in self.engine_pids:  # each replica runs in its own session: reach it by its pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def server_log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_base, headers={"authorization": f"Bearer {self.token}"}, timeout=30)

    def apply(self, spec: dict[str, Any]) -> None:
        with self.api() as api:
            response = api.post("/deployments", json=spec)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"apply failed: {response.status_code} {response.text}")

    def status(self) -> dict[str, Any]:
        with self.api() as api:
            response = api.get(f"/deployments/{DEPLOYMENT}")
            response.raise_for_status()
            status = dict(response.json()["deployment"]["status"])
        self.note_pids(status)
        return status

    def note_pids(self, status: dict[str, Any]) -> None:
        self.engine_pids.update(r["pid"] for r in status.get("replicas", []) if r.get("pid"))

    def wait_at_zero(self, timeout: float) -> dict[str, Any]:
        """Until the deployment is READY with no replica at all (none starting, none draining)."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if status.get("status") == "STATUS_READY" and not status.get("replicas") and not status["readyReplicas"]:
                return status
            time.sleep(0.2)
        raise RuntimeError(f"{DEPLOYMENT} did not reach 0 replicas in {timeout:.0f} s; last status {status}")


def deployment_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": DEPLOYMENT,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {
            "min": 0,
            "max": args.max_replicas,
            "initialScale": 0,
            "concurrency": args.concurrency_target,
            "profile": "knative",
            "window": args.window,
            "scaleToZeroGracePeriod": args.grace,
        },
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def distribution(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<44} n=0"
    ms = [v * 1000 for v in values]
    return (
        f"  {label:<44} n={len(ms):<5} p50 {pct(ms, 50):7.0f}  p90 {pct(ms, 90):7.0f}  "
        f"p99 {pct(ms, 99):7.0f}  max {max(ms):7.0f} ms"
    )


# ---- overhead ---------------------------------------------------------------------------------------


@dataclass
class OverheadSample:
    sent: float
    head: float  # response head at the client
    first_event: float  # first SSE data line at the client
    phases: dict[str, float]

    def row(self) -> str:
        p = self.phases
        parts = [f"wait {1000 * (p.get('waiting_for_capacity', self.sent) - self.sent):6.1f}"]
        if "downloading_weights" in p:
            parts.append(f"download {1000 * (p['downloading_weights'] - self.sent):6.1f}")
        parts.append(f"engine_load(a) {1000 * (p['engine_load'] - self.sent):6.1f}")
        parts.append(f"ready {1000 * (p['ready'] - self.sent):7.0f}")
        parts.append(f"head {1000 * (self.head - self.sent):7.0f}")
        parts.append(f"| ready->head(b) {1000 * (self.head - p['ready']):6.1f}")
        parts.append(f"ready->first event {1000 * (self.first_event - p['ready']):6.1f}")
        return "  ".join(parts) + "  ms after send"


def overhead_once(tide: Tide) -> OverheadSample:
    body = {"model": DEPLOYMENT, "prompt": "hello", "max_tokens": 1, "stream": True}
    with httpx.Client(timeout=120) as client:
        sent = time.time()
        with client.stream("POST", f"{tide.gateway_base}/completions", json=body) as response:
            head = time.time()
            if response.status_code != 200:
                raise RuntimeError(f"overhead request failed: {response.status_code} {response.read()!r}")
            first_event = 0.0
            for line in response.iter_lines():
                if line.startswith("data: ") and not first_event:
                    first_event = time.time()
    status = tide.status()
    started = [r for r in status["replicas"] if r["phaseTimes"].get("waiting_for_capacity", 0) >= sent - 1]
    if len(started) != 1 or "ready" not in started[0]["phaseTimes"]:
        raise RuntimeError(f"expected exactly one replica started for the request, got {status['replicas']}")
    return OverheadSample(sent, head, first_event, dict(started[0]["phaseTimes"]))


def run_overhead(tide: Tide, repeats: int, zero_timeout: float) -> list[OverheadSample]:
    samples = []
    for i in range(repeats):
        tide.wait_at_zero(zero_timeout)
        time.sleep(0.5)  # let the zero settle (routes, autoscaler state)
        sample = overhead_once(tide)
        samples.append(sample)
        print(f"  #{i + 1}  {sample.row()}", flush=True)
    tide.wait_at_zero(zero_timeout)
    return samples


# ---- load ------------------------------------------------------------------------------------------


@dataclass
class Result:
    sent: float
    latency: float
    outcome: str  # "ok", an HTTP status, or an exception name


@dataclass
class Watch:
    start: float
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, ready, desired, clients
    replicas: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> phaseTimes (latest seen)
    last_seen: dict[str, float] = field(default_factory=dict)

    def ready_intervals(self) -> list[tuple[float, float]]:
        spans = []
        for rid, times in self.replicas.items():
            if "ready" not in times:
                continue
            ends = [times[k] for k in ("draining", "stopped", "crashed", "failed") if k in times]
            spans.append((times["ready"], min(ends) if ends else self.last_seen[rid]))
        return sorted(spans)

    def timeline(self) -> str:
        """Once a second: ready/desired (clients), written only where it changes."""
        per_second: dict[int, tuple[int, int, int]] = {}
        for t, ready, desired, clients in self.samples:
            per_second[int(t - self.start)] = (ready, desired, clients)
        parts, last = [], None
        for second in sorted(per_second):
            value = per_second[second]
            if value != last:
                parts.append(f"{second}s {value[0]}/{value[1]} ({value[2]})")
                last = value
        lines, line = [], "   "
        for part in parts:
            if len(line) + len(part) > 110:
                lines.append(line)
                line = "   "
            line += " " + part + " |"
        lines.append(line)
        return "\n".join(lines)


def target_clients(issued: int, total: int, peak: int, start: int = 1) -> int:
    """A ramp over the run: `start` clients at the first request, `peak` half-way, 1 at the last."""
    f = issued / max(1, total - 1)
    rising = start + (peak - start) * 2 * f
    falling = 1 + (peak - 1) * (2 - 2 * f)
    return max(1, round(rising if f < 0.5 else falling))


async def drive(tide: Tide, args: argparse.Namespace) -> tuple[list[Result], Watch, bool]:
    total, peak = args.requests, args.peak_clients
    results: list[Result] = []
    issued = 0
    active = [0]
    watch = Watch(start=time.time())
    done = asyncio.Event()

    async def worker(k: int, client: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < total:
            if k >= target_clients(issued, total, peak, args.start_clients):
                await asyncio.sleep(0.02)
                continue
            issued += 1
            body = {"model": DEPLOYMENT, "prompt": f"request {issued}", "max_tokens": args.max_tokens}
            active[0] += 1
            sent = time.time()
            try:
                response = await client.post(f"{tide.gateway_base}/completions", json=body)
                ok = response.status_code == 200 and bool(response.json().get("choices"))
                outcome = "ok" if ok else str(response.status_code)
            except (httpx.HTTPError, ValueError) as exc:
                outcome = type(exc).__name__
            results.append(Result(sent, time.time() - sent, outcome))
            active[0] -= 1

    async def watcher(api: httpx.AsyncClient) -> None:
        while not done.is_set():
            with contextlib.suppress(httpx.HTTPError, KeyError):
                response = await api.get(f"/deployments/{DEPLOYMENT}")
                status = response.json()["deployment"]["status"]
                now = time.time()
                tide.note_pids(status)
                watch.samples.append((now, status["readyReplicas"], status["desiredReplicas"], active[0]))
                for replica in status["replicas"]:
                    watch.replicas[replica["id"]] = dict(replica["phaseTimes"])
                    watch.last_seen[replica["id"]] = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), args.poll)

    limits = httpx.Limits(max_connections=peak + 4, max_keepalive_connections=peak + 4)
    headers = {"authorization": f"Bearer {tide.token}"}
    async with (
        httpx.AsyncClient(timeout=args.request_timeout, limits=limits) as client,
        httpx.AsyncClient(base_url=tide.api_base, headers=headers, timeout=10) as api,
    ):
        watching = asyncio.create_task(watcher(api))
        await asyncio.gather(*(worker(k, client) for k in range(peak)))
        print(f"  all {total} requests answered after {time.time() - watch.start:.1f} s; waiting for zero", flush=True)
        # Back to zero: every replica gone (not only 0 ready).
        deadline = time.monotonic() + args.zero_timeout
        at_zero = False
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if (
                watch.samples
                and watch.samples[-1][1:3] == (0, 0)
                and not any(watch.last_seen[r] >= watch.samples[-1][0] for r in watch.last_seen)
            ):
                at_zero = True
                break
        done.set()
        await watching
    return results, watch, at_zero


def report_load(results: list[Result], watch: Watch, at_zero: bool, elapsed: float) -> bool:
    outcomes = Counter(r.outcome for r in results)
    failed = {k: v for k, v in outcomes.items() if k != "ok"}
    print(f"  requests sent {len(results)}, ok {outcomes['ok']}, failed {sum(failed.values())} {failed or ''}")
    peak_ready = max((s[1] for s in watch.samples), default=0)
    peak_desired = max((s[2] for s in watch.samples), default=0)
    print(f"  peak ready replicas {peak_ready} (peak desired {peak_desired}); replicas started {len(watch.replicas)}")
    print(f"  ended at 0 replicas: {'yes' if at_zero else 'NO'}  ({elapsed:.0f} s from first request to zero)")
    print("  timeline, t since first request: ready/desired (clients in flight), once a second where it changes:")
    print(watch.timeline())

    spans = watch.ready_intervals()

    def no_replica_ready(t: float) -> bool:
        return not any(start <= t < end for start, end in spans)

    def estimated_queue(t: float) -> float:
        later = [start for start, _ in spans if start >= t]
        return (min(later) - t) if later else 0.0

    ok = [r for r in results if r.outcome == "ok"]
    cold = [r for r in ok if no_replica_ready(r.sent)]
    warm = [r for r in ok if not no_replica_ready(r.sent)]
    print("  client latency (ok requests):")
    print(distribution("all", [r.latency for r in ok]))
    print(distribution("sent while 0 replicas ready (queued)", [r.latency for r in cold]))
    print(distribution("sent while >= 1 replica ready", [r.latency for r in warm]))
    print(distribution("estimated time queued (queued ones)", [estimated_queue(r.sent) for r in cold]))
    waits = sorted((b_start - a_end) for (_, a_end), (b_start, _) in itertools.pairwise(spans) if b_start > a_end)
    if waits:
        print(f"  gaps with no ready replica during the run: {len(waits)}, {[round(w, 1) for w in waits]} s")
    return not failed and at_zero


# ---- main -----------------------------------------------------------------------------------------


class HardTimeout(Exception):
    pass


def on_alarm(_signum: int, _frame: object) -> None:
    raise HardTimeout


@contextlib.contextmanager
def tide_running(args: argparse.Namespace) -> Iterator[Tide]:
    root = Path(tempfile.mkdtemp(prefix="tide-scale-bench-"))
    tide: Tide | None = None
    try:
        buckets = root / "buckets"
        target = buckets / "models" / "tiny"
        if args.model_dir:
            shutil.copytree(args.model_dir, target)
        else:
            make_tiny_model(target, log=lambda line: None)
        tide = Tide(root, buckets)
        tide.start()
        yield tide
    finally:
        if tide is not None:
            tide.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="load run requests (0: skip the load run)")
    parser.add_argument("--peak-clients", type=int, default=24, help="concurrent clients half-way (1 -> N -> 1)")
    parser.add_argument("--start-clients", type=int, default=1, help="concurrent clients at the first request")
    parser.add_argument("--max-replicas", type=int, default=4)
    parser.add_argument("--concurrency-target", type=int, default=2, help="autoscaling.concurrency")
    parser.add_argument("--window", default="6s", help="autoscaling.window (stable window)")
    parser.add_argument("--grace", default="2s", help="autoscaling.scaleToZeroGracePeriod")
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--overhead", type=int, default=5, help="overhead repeats (0: skip)")
    parser.add_argument("--poll", type=float, default=0.5, help="status poll interval during the load run (s)")
    parser.add_argument("--request-timeout", type=float, default=120)
    parser.add_argument("--zero-timeout", type=float, default=120, help="seconds allowed to get back to zero")
    parser.add_argument("--timeout", type=float, default=900, help="hard limit for the whole run (s)")
    parser.add_argument("--model-dir", type=Path, help="a tiny model already built (default: build one, ~10 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (server and replica logs)")
    args = parser.parse_args()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_alarm)
    signal.alarm(max(1, int(args.timeout)))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"cpus {os.cpu_count()}, load average at start {load_average()}", flush=True)
    passed = True
    try:
        with tide_running(args) as tide:
            tide.apply(deployment_spec(args))
            tide.wait_at_zero(60)
            print(f"deployment {DEPLOYMENT}: {deployment_spec(args)['autoscaling']}, max_tokens {args.max_tokens}")

            if args.overhead:
                print(f"\noverhead ({args.overhead} cold starts, stream=true, max_tokens=1):", flush=True)
                samples = run_overhead(tide, args.overhead, args.zero_timeout)
                a = [1000 * (s.phases["engine_load"] - s.sent) for s in samples]
                b = [1000 * (s.head - s.phases["ready"]) for s in samples]
                b_event = [1000 * (s.first_event - s.phases["ready"]) for s in samples]
                cold = [s.head - s.sent for s in samples]
                print(f"  (a) request sent -> engine process spawned: median {statistics.median(a):.1f} ms "
                      f"(target < 100)  samples {[round(x, 1) for x in a]}")  # fmt: skip
                print(f"  (b) replica ready -> first byte at client:  median {statistics.median(b):.1f} ms "
                      f"(target < 50)   samples {[round(x, 1) for x in b]}")  # fmt: skip
                print(f"      replica ready -> first SSE event:       median {statistics.median(b_event):.1f} ms  "
                      f"samples {[round(x, 1) for x in b_event]}")  # fmt: skip
                print(f"      whole cold start, send -> first byte:  median {statistics.median(cold):.2f} s  "
                      f"samples {[round(x, 2) for x in cold]}")  # fmt: skip
                print(f"  load average now {load_average()}", flush=True)

            if args.requests:
                ramp = f"{args.start_clients} -> {args.peak_clients} -> 1"
                print(f"\nload: {args.requests} requests, clients {ramp}, from zero", flush=True)
                tide.wait_at_zero(args.zero_timeout)
                results, watch, at_zero = asyncio.run(drive(tide, args))
                elapsed = (watch.samples[-1][0] if watch.samples else time.time()) - watch.start
                passed = report_load(results, watch, at_zero, elapsed)
                print(f"  load average now {load_average()}", flush=True)
    except HardTimeout:
        print(f"hard timeout ({args.timeout:.0f} s) or SIGTERM: stopped everything", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
    print("\nPASS" if passed else "\nFAIL: failed requests or not back at 0 replicas")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
