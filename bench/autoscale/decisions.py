"""Why one request waited: a policy's decisions and the requests, in time order, over a stretch of a replay.

Usage: python bench/autoscale/decisions.py --scenario gentd-M0024 [--policy tide] [--from S --to S]
       [--miss K] [--all] [--parking off|on] [--cold-start 15] [--slo 2] [--traces-dir ../shared/traces]

Replays the scenario as `tide sim --suite` does (bench/autoscale/misses.py's replay) and prints each request
of the stretch (its wait, the class misses.py puts it in, how long the deployment had been idle) between
the decisions taken meanwhile, each with its reason. `--miss K` centres the stretch on the K-th request
that waited longer than the SLO (the 5 minutes before it, 30 s after). A decision is printed when the count
or the mechanism changes (`--all`: every one), so an hour-long keep-alive is one line, not 1,800.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from misses import watch

BEFORE_MISS_S = 300.0
AFTER_MISS_S = 30.0


def _stretch(args: argparse.Namespace) -> tuple[float, float]:
    if args.miss is None:
        return args.start, args.end
    arrivals, replay = watch(args.scenario, args.policy, args)
    missed = [t for t, wait in zip(arrivals, replay.waits, strict=True) if wait > args.slo + 1e-9]
    if not 1 <= args.miss <= len(missed):
        raise SystemExit(f"--miss {args.miss}: this replay has {len(missed)} requests that waited > {args.slo:g}s")
    at = missed[args.miss - 1]
    return at - BEFORE_MISS_S, at + AFTER_MISS_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--policy", default="tide")
    parser.add_argument("--from", dest="start", type=float, default=0.0, help="seconds into the replay")
    parser.add_argument("--to", dest="end", type=float, default=600.0, help="seconds into the replay")
    parser.add_argument("--miss", type=int, help="centre on the K-th request that waited longer than the SLO")
    parser.add_argument("--all", action="store_true", help="every decision, not only changes")
    parser.add_argument("--parking", default="off", choices=("off", "on", "profile"))
    parser.add_argument("--traces-dir", type=Path, default=Path("../shared/traces"))
    parser.add_argument("--cold-start", type=float, default=15.0)
    parser.add_argument("--slo", type=float, default=2.0)
    args = parser.parse_args()
    start, end = _stretch(args)
    arrivals, replay = watch(args.scenario, args.policy, args, window=(start, end))
    lines: list[tuple[float, int, str]] = []
    for index, t in enumerate(arrivals):
        if start <= t <= end:
            wait = replay.waits[index]
            missed = "  MISS" if wait > args.slo + 1e-9 else ""
            idle = f", idle {replay.idle_for[index]:.0f}s" if replay.idle_for[index] > 0 else ""
            lines.append((t, 0, f"request waited {wait:5.1f}s ({replay.state[index]}{idle}){missed}"))
    shown: tuple[int, str] | None = None
    for t, desired, reason in replay.decisions:
        key = (desired, reason.split(":", 1)[0])
        if args.all or key != shown:
            lines.append((t, 1, f"-> {desired:<3} {reason}"))
            shown = key
    print(f"{args.scenario}, {args.policy}, {start:.0f}-{end:.0f}s of the replay (cold start {args.cold_start:g}s)")
    for t, _, text in sorted(lines):
        print(f"{t:12.1f}  {text}")


if __name__ == "__main__":
    main()
