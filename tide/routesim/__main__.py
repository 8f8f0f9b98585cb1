"""`python -m tide.routesim --trace PATH`: compare routing policies on a block-hash trace."""

from __future__ import annotations

import argparse
import sys
import time

from tide.routesim.policies import POLICIES
from tide.routesim.replica import ServiceModel
from tide.routesim.run import SimResult, format_table, replay
from tide.routesim.trace import TraceError, read_trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tide.routesim", description=__doc__)
    parser.add_argument("--trace", required=True, help="Mooncake-format JSONL (timestamp ms, hash_ids per block)")
    parser.add_argument("--replicas", default="4,8", help="comma-separated replica counts (default 4,8)")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, of {', '.join(POLICIES)}")
    parser.add_argument("--cache-blocks", type=int, default=ServiceModel.cache_blocks, help="blocks per replica")
    parser.add_argument("--prefill-ms-per-block", type=float, default=ServiceModel.prefill_s_per_block * 1000)
    parser.add_argument("--decode-ms-per-token", type=float, default=ServiceModel.decode_s_per_token * 1000)
    parser.add_argument("--time-scale", type=float, default=1.0, help="compress arrivals by this factor")
    parser.add_argument(
        "--tide-first-chunk-blocks",
        type=int,
        default=1,
        help="how many blocks the gateway's first named chunk (1,152 bytes) spans: 1 for 512-token blocks "
        "(~2 KB each), more for a trace scaled to a small model (bench/prefix/live.py prints it)",
    )
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N requests")
    parser.add_argument(
        "--flush-at",
        type=float,
        default=None,
        help="empty the first replica's cache at this time (s, after --time-scale): an engine restarted at "
        "the same address, which the router is not told",
    )
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.replicas.split(",")]
    except ValueError:
        parser.error(f"--replicas must be comma-separated integers, not {args.replicas!r}")
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        parser.error(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    if args.cache_blocks < 1 or any(n < 1 for n in counts) or args.time_scale <= 0 or args.tide_first_chunk_blocks < 1:
        parser.error("--cache-blocks, --replicas, --time-scale and --tide-first-chunk-blocks must be positive")
    try:
        requests = read_trace(args.trace, args.limit)
    except (OSError, TraceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = ServiceModel(
        cache_blocks=args.cache_blocks,
        prefill_s_per_block=args.prefill_ms_per_block / 1000,
        decode_s_per_token=args.decode_ms_per_token / 1000,
    )
    started = time.perf_counter()
    results: list[SimResult] = []
    for count in counts:
        for name in names:
            policy = POLICIES[name](count, args.cache_blocks, args.tide_first_chunk_blocks)
            results.append(replay(name, policy, requests, count, model, args.time_scale, args.flush_at))
    print(
        f"{len(requests)} requests, {args.cache_blocks} blocks cached per replica, prefill "
        f"{args.prefill_ms_per_block:g} ms/uncached block, decode {args.decode_ms_per_token:g} ms/token, "
        f"time scale {args.time_scale:g}"
    )
    print(format_table(results))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
