"""Weights download bandwidth: one sequential stream vs Tide's parallel download vs the machine's ceiling.

Usage: python bench/weights/run.py [--size-gib 2] [--shards 2] [--repeat 2] [--range-mib 32] [--threads 16]

Starts SeaweedFS on loopback (telemetry off), uploads `--size-gib` of incompressible data as
`--shards` safetensors-like files plus config.json (multipart, as `tide weights push` would), then, on
the same objects:
- single stream: one GET per file, read into a 1 MiB buffer and written to a file, sequentially;
- tide: `WeightsCache.ensure_sync` into an empty cache (parallel byte-range GETs, verified, renamed);
- ceilings: copying the server's own volume files (same bytes, warm page cache) into a new file on the
  cache's filesystem (read + write: what any download that lands on disk must at least do), and reading
  them only (read into a buffer).
Prints MB/s (10^6 B/s) and ratios. Every big file is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for tests.support

from tests.support.seaweed import seaweed_server
from tide.weights import StorageConfig, TransferSettings, WeightsCache, WeightsSource

BUCKET = "bench"
PREFIX = "models/big"
BLOCK = 64 << 20


def make_shards(directory: Path, size: int, shards: int) -> list[Path]:
    """Incompressible data: a random 64 MiB block, each copy stamped with its index."""
    block = bytearray(os.urandom(BLOCK))
    paths = []
    per_shard = size // shards
    index = 0
    for s in range(shards):
        path = directory / f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        with open(path, "wb") as f:
            left = per_shard
            while left > 0:
                block[:8] = index.to_bytes(8, "little")
                index += 1
                n = min(BLOCK, left)
                f.write(memoryview(block)[:n])
                left -= n
        paths.append(path)
    (directory / "config.json").write_text('{"model_type": "llama"}')
    return paths


def process_cpu_s(pid: int) -> float:
    """utime + stime of another process (the server), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    fn: Callable[[], int], repeat: int, cleanup: Callable[[], None], server_pid: int
) -> tuple[float, int, float, float]:
    """Median (seconds, bytes, client CPU s, server CPU s) over `repeat` runs."""
    runs = []
    nbytes = 0
    for _ in range(repeat):
        cpu0, srv0, start = time.process_time(), process_cpu_s(server_pid), time.perf_counter()
        nbytes = fn()
        runs.append((time.perf_counter() - start, time.process_time() - cpu0, process_cpu_s(server_pid) - srv0))
        cleanup()
    return (
        statistics.median(r[0] for r in runs),
        nbytes,
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
    )


def single_stream(client: Any, keys: list[str], out_dir: Path) -> int:
    buf = memoryview(bytearray(1 << 20))
    total = 0
    for key in keys:
        resp = client.get_object(Bucket=BUCKET, Key=key)
        raw = resp["Body"]._raw_stream._fp  # http.client response: one copy (as Tide reads it)
        with open(out_dir / Path(key).name, "wb", buffering=0) as f:
            while n := raw.readinto(buf):
                f.write(buf[:n])
                total += n
    return total


def copy_files(sources: list[Path], out_dir: Path) -> int:
    buf = memoryview(bytearray(16 << 20))
    total = 0
    for i, src in enumerate(sources):
        with open(src, "rb", buffering=0) as fin, open(out_dir / f"copy-{i}", "wb", buffering=0) as fout:
            while n := fin.readinto(buf):
                fout.write(buf[:n])
                total += n
    return total


def read_files(sources: list[Path]) -> int:
    buf = memoryview(bytearray(16 << 20))
    total = 0
    for src in sources:
        with open(src, "rb", buffering=0) as fin:
            while n := fin.readinto(buf):
                total += n
    return total


def empty(directory: Path) -> Callable[[], None]:
    def clean() -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)

    return clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--range-mib", type=int, default=32)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--work-dir", type=Path, default=None, help="where the big files go (default: a temp dir)")
    args = parser.parse_args()
    size = int(args.size_gib * (1 << 30))
    work = Path(tempfile.mkdtemp(prefix="tide-bench-weights-", dir=args.work_dir))
    try:
        with seaweed_server(work / "seaweed") as server:
            client = server.client()
            client.create_bucket(Bucket=BUCKET)
            src_dir = work / "src"
            src_dir.mkdir()
            t0 = time.perf_counter()
            make_shards(src_dir, size, args.shards)
            storage = StorageConfig(None, server.endpoint_url, server.region, server.access_key, server.secret_key)
            from tide.weights import push_directory

            push_directory(src_dir, BUCKET, PREFIX, storage)
            shutil.rmtree(src_dir)
            print(
                f"setup: {size / 1e9:.2f} GB in {args.shards} shards made and uploaded in {time.perf_counter() - t0:.1f} s"
            )
            keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"])
            big_keys = [k for k in keys if k.endswith(".safetensors")]
            volumes = sorted((work / "seaweed").rglob("*.dat"), key=lambda p: p.stat().st_size, reverse=True)
            volume_bytes, volume_files = 0, []
            for v in volumes:  # the volume files that hold (at least) the same number of bytes
                if volume_bytes >= size:
                    break
                volume_files.append(v)
                volume_bytes += v.stat().st_size
            read_files(volume_files)  # warm the page cache for the ceiling, as the server's reads are warm

            out = work / "out"
            out.mkdir()
            results: dict[str, tuple[float, int, float, float]] = {}
            pid = server.process.pid
            results["single stream (1 GET per file)"] = timed(
                lambda: single_stream(client, big_keys, out), args.repeat, empty(out), pid
            )
            settings = TransferSettings(range_bytes=args.range_mib << 20, threads=args.threads)

            def tide_download() -> int:
                cache = WeightsCache(out / "cache", settings=settings)
                with cache.ensure_sync(storage, WeightsSource(BUCKET, PREFIX)) as lease:
                    return sum(p.stat().st_size for p in lease.path.iterdir())

            results[f"tide parallel ({args.threads} x {args.range_mib} MiB ranges)"] = timed(
                tide_download, args.repeat, empty(out), pid
            )
            results["ceiling: copy server volumes -> disk"] = timed(
                lambda: copy_files(volume_files, out), args.repeat, empty(out), pid
            )
            results["ceiling: read server volumes (page cache)"] = timed(
                lambda: read_files(volume_files), args.repeat, lambda: None, pid
            )

            rates = {name: r[1] / r[0] / 1e6 for name, r in results.items()}
            single = rates["single stream (1 GET per file)"]
            copy_ceiling = rates["ceiling: copy server volumes -> disk"]
            read_ceiling = rates["ceiling: read server volumes (page cache)"]
            print(
                f"{'method':46} {'s':>6} {'MB/s':>6} {'x single':>8} {'/copy ceil':>10} {'/read ceil':>10} {'client CPU':>10} {'server CPU':>10}"
            )
            for name, (secs, nbytes, client_cpu, server_cpu) in results.items():
                r = rates[name]
                gb = nbytes / 1e9
                print(
                    f"{name:46} {secs:6.2f} {r:6.0f} {r / single:8.2f} {100 * r / copy_ceiling:9.0f}% {100 * r / read_ceiling:9.0f}%"
                    f" {client_cpu / gb:6.2f} s/GB {server_cpu / gb:6.2f} s/GB"
                )
            load = os.getloadavg()[0]
            print(
                f"(median of {args.repeat}; {os.cpu_count()} CPUs shared by client, server and anything else: load average {load:.1f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
