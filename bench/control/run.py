"""The control plane at many deployments: what one create, get, list, PATCH and idle second cost at N.

Usage: python bench/control/run.py [--sizes 100,10000] [--idle-seconds 60] [--stores sqlite,postgres]
                                   [--clients 4] [--seed-budget-s 240] [--measured 100]

For each store (SQLite; Postgres when `/usr/lib/postgresql/*/bin/initdb` exists) and each size N it starts
its own `tide up` on free loopback ports with a fresh data dir (and a fresh Postgres database), and:

1. seeds N - `--measured` deployments through the API with `--clients` concurrent clients, each a builtin
   engine deployment with min 0 (no replica ever starts; the weights are never read). A seed that runs
   past `--seed-budget-s` inserts the rest straight into the store (said in the output), so a slow
   control plane cannot make the run unbounded;
2. times the last `--measured` creates through the API (same concurrency): create p50/p99 at size N;
3. get p50 (one deployment by id, random ids), first-page list p50 (the list route as a client calls it
   first, no page token) and that page's size in KB;
4. the idle control plane's CPU share: utime+stime of the `tide up` process from /proc over
   `--idle-seconds`, after a short settle, as a share of one core; then the same gets again ("get p50
   after idle": step 3's gets run while the controller may still be working off the seed's creates);
5. PATCH-to-route: an `external` deployment whose endpoint is PATCHed between two live loopback
   upstreams (each answers with its own name); the time from sending the PATCH until the gateway's
   answer comes from the new upstream (polled every 5 ms), `--patches` times, median and max.

Prints one table per store with the sizes side by side and each size's ratio to the first size.
The machine is shared: ratios within one run mean more than absolute numbers.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import glob
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

PROBE = "route-probe"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def deployment_spec(i: int) -> dict[str, Any]:
    return {
        "name": f"d{i:05d}",
        "model": {"name": f"d{i:05d}", "bucket": "models", "path": f"m{i:05d}"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": 0, "max": 1, "initialScale": 0},  # never a replica
    }


# -- a live upstream that says who it is ------------------------------------------------------------------


def start_upstream(name: str) -> tuple[ThreadingHTTPServer, str]:
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": name}, "finish_reason": "stop"}],
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


# -- the server under test ---------------------------------------------------------------------------------


@dataclass
class Tide:
    data_dir: Path
    database_url: str | None
    api_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str = ""

    def start(self) -> None:
        args = [sys.executable, "-m", "tide.cli", "--data-dir", str(self.data_dir), "up"]
        args += ["--api-port", str(self.api_port), "--gateway-port", str(self.gateway_port)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"tide up exited:\n{self.log_tail()}")
            token_file = self.data_dir / "api-token"
            if token_file.exists():
                self.token = token_file.read_text().strip()
                with contextlib.suppress(httpx.HTTPError), self.api() as api:
                    if api.get("/healthz").status_code == 200:
                        return
            time.sleep(0.1)
        raise SystemExit(f"tide up did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.api_port}",
            headers={"authorization": f"Bearer {self.token}"},
            timeout=120,
        )

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


BASE = "/v1alpha1/inference/deployments"


def create_many(tide: Tide, indices: list[int], clients: int, budget_s: float | None) -> tuple[list[float], int]:
    """Create these deployments with `clients` concurrent clients; returns latencies and how many were created
    (fewer when the budget ran out)."""
    latencies: list[float] = []
    deadline = time.monotonic() + budget_s if budget_s is not None else float("inf")
    lock = threading.Lock()
    queue = iter(indices)

    def worker() -> None:
        with tide.api() as api:
            while time.monotonic() < deadline:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                started = time.perf_counter()
                response = api.post(BASE, json=deployment_spec(i))
                elapsed = time.perf_counter() - started
                if response.status_code != 201:
                    raise SystemExit(f"create {i} failed: {response.status_code} {response.text}")
                with lock:
                    latencies.append(elapsed)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    return latencies, len(latencies)


def insert_directly(database_url: str, indices: list[int]) -> None:
    from tide.store import Store

    store = Store(database_url)
    try:
        for i in indices:
            raw = deployment_spec(i)  # as sent: the controller parses (and defaults) what it reads
            store.create_deployment(raw["name"], raw, time.time())
    finally:
        store.close()


def time_calls(api: httpx.Client, paths: list[str]) -> tuple[list[float], int]:
    latencies, size = [], 0
    for path in paths:
        started = time.perf_counter()
        response = api.get(path)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    return latencies, size


def patch_to_route(tide: Tide, upstreams: list[str], repeats: int) -> list[float]:
    gateway = httpx.Client(base_url=f"http://127.0.0.1:{tide.gateway_port}/v1", timeout=10)
    body = {"model": PROBE, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}

    def spec(url: str) -> dict[str, Any]:
        return {"name": PROBE, "runtime": {"engine": "external", "endpoints": [url]}}

    def answering() -> str | None:
        with contextlib.suppress(httpx.HTTPError):
            response = gateway.post("/chat/completions", json=body)
            if response.status_code == 200:
                return str(response.json().get("model"))
        return None

    times = []
    with tide.api() as api, gateway:
        response = api.post(BASE, json={**spec(upstreams[0]), "id": PROBE})
        if response.status_code != 201:
            raise SystemExit(f"creating {PROBE}: {response.status_code} {response.text}")
        deadline = time.monotonic() + 60
        while answering() != "up0":
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateway never routed {PROBE}\n{tide.log_tail()}")
            time.sleep(0.05)
        for n in range(repeats):
            target = (n + 1) % 2
            started = time.perf_counter()
            response = api.patch(f"{BASE}/{PROBE}", json=spec(upstreams[target]))
            if response.status_code != 200:
                raise SystemExit(f"PATCH {PROBE}: {response.status_code} {response.text}")
            deadline = time.monotonic() + 120
            while answering() != f"up{target}":
                if time.monotonic() > deadline:
                    raise SystemExit(f"the gateway never routed {PROBE} to up{target}")
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
    return times


def measure(store_name: str, database_url: str | None, size: int, args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"tide-control-bench-{store_name}-{size}-"))
    data_dir = root / "data"
    data_dir.mkdir()
    tide = Tide(data_dir, database_url)
    upstreams = [start_upstream(f"up{i}") for i in range(2)]
    tide.start()
    out: dict[str, Any] = {"size": size}
    try:
        measured = min(args.measured, size)
        seed = list(range(size - measured))
        started = time.monotonic()
        _, created = create_many(tide, seed, args.clients, args.seed_budget_s)
        out["seed_s"] = time.monotonic() - started
        out["seeded_directly"] = len(seed) - created
        if created < len(seed):
            url = database_url or f"sqlite:///{data_dir / 'tide.db'}"
            insert_directly(url, seed[created:])
        latencies, _ = create_many(tide, list(range(size - measured, size)), args.clients, None)
        out["create_p50"], out["create_p99"] = pct(latencies, 0.5), pct(latencies, 0.99)
        rng = random.Random(size)
        with tide.api() as api:
            ids = [f"d{rng.randrange(size):05d}" for _ in range(args.gets)]
            gets, _ = time_calls(api, [f"{BASE}/{i}" for i in ids])
            out["get_p50"] = pct(gets, 0.5)
            lists, page_bytes = time_calls(api, [BASE] * args.lists)
            out["list_p50"], out["list_kb"] = pct(lists, 0.5), page_bytes / 1024
        time.sleep(args.settle_seconds)
        cpu0, wall0 = tide.cpu_seconds(), time.monotonic()
        time.sleep(args.idle_seconds)
        out["idle_cpu"] = (tide.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        with tide.api() as api:  # the same gets again, now that the controller has worked off the seed
            gets, _ = time_calls(api, [f"{BASE}/{i}" for i in ids])
            out["get_idle_p50"] = pct(gets, 0.5)
        patches = patch_to_route(tide, [url for _, url in upstreams], args.patches)
        out["patch_p50"], out["patch_max"] = statistics.median(patches), max(patches)
    finally:
        tide.stop()
        for server, _ in upstreams:
            server.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    return out


ROWS = [
    ("create p50 (ms)", "create_p50", 1000),
    ("create p99 (ms)", "create_p99", 1000),
    ("get p50 (ms)", "get_p50", 1000),
    ("get p50 after idle (ms)", "get_idle_p50", 1000),
    ("first-page list p50 (ms)", "list_p50", 1000),
    ("first-page list size (KB)", "list_kb", 1),
    ("idle CPU (% of a core)", "idle_cpu", 100),
    ("PATCH-to-route p50 (ms)", "patch_p50", 1000),
    ("PATCH-to-route max (ms)", "patch_max", 1000),
    ("seed time (s)", "seed_s", 1),
    ("seeded straight into the store", "seeded_directly", 1),
]


def print_table(store_name: str, results: list[dict[str, Any]]) -> None:
    base = results[0]
    header = f"{'store: ' + store_name:32}" + "".join(f"{'N=' + str(r['size']):>12}" for r in results)
    header += "".join(f"{'x N=' + str(r['size']):>12}" for r in results[1:])
    print(header)
    for label, key, scale in ROWS:
        line = f"{label:32}" + "".join(f"{r[key] * scale:12.2f}" for r in results)
        for r in results[1:]:
            ratio = r[key] / base[key] if base[key] else float("nan")
            line += f"{ratio:12.2f}"
        print(line)
    print(flush=True)


@contextlib.contextmanager
def scratch_tide(prefix: str) -> Iterator[Tide]:
    """A `tide up` on SQLite in a temporary data dir (free loopback ports): the profiling scripts' server,
    stopped and its directory removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "data").mkdir()
    tide = Tide(root / "data", None)
    tide.start()
    try:
        yield tide
    finally:
        tide.stop()
        shutil.rmtree(root, ignore_errors=True)


def py_spy_record(tide: Tide, out: str, seconds: int) -> subprocess.Popen[bytes]:
    """py-spy recording the `tide up` process for up to `seconds` (50 Hz, raw collapsed stacks into `out`);
    attached when this returns. An interrupt makes it write what it has."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    assert tide.process is not None
    record = [py_spy, "record", "-p", str(tide.process.pid), "-d", str(seconds), "-r", "50", "-f", "raw"]
    spy = subprocess.Popen([*record, "-o", out, "--nonblocking"])
    time.sleep(1)  # py-spy attached
    return spy


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    sys.path.append(str(Path(__file__).resolve().parents[2]))  # tests.support; tide comes from PYTHONPATH
    from tests.support.postgres import postgres_server

    with postgres_server() as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed-budget-s", type=float, default=240.0)
    parser.add_argument("--measured", type=int, default=100, help="creates timed at the end of each size")
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--lists", type=int, default=10)
    parser.add_argument("--patches", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = args.stores.split(",")
    print(f"sizes {sizes}, {args.clients} clients, idle window {args.idle_seconds:g}s, cpus {os.cpu_count()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (a loaded machine inflates absolute numbers)\n")
    if "sqlite" in stores:
        print_table("sqlite", [measure("sqlite", None, n, args) for n in sizes])
    if "postgres" in stores:
        if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
            print("postgres: skipped (no /usr/lib/postgresql/*/bin/initdb)")
        else:
            with postgres() as server:
                print_table("postgres", [measure("postgres", server.create_database(), n, args) for n in sizes])
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
