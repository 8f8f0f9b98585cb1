"""The idle control plane's CPU share over time after seeding N deployments through the API.

Usage: python bench/control/idle_after_seed.py [--size 10000] [--windows 9] [--window-seconds 20]

Starts its own `tide up` (SQLite, temporary data dir, free loopback ports; see run.py), creates N min-0
deployments through the API with 4 clients as run.py does, then prints the `tide up` process's CPU share
(utime+stime from /proc over wall time, a share of one core) in consecutive windows. The first windows
show the controller finishing the seed's work (parsing, weights checks, first status writes); the later
ones what an idle control plane costs at N. run.py's idle figure starts after `--settle-seconds`.
"""

from __future__ import annotations

import argparse
import os
import time

from run import create_many, scratch_tide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--windows", type=int, default=9)
    parser.add_argument("--window-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with scratch_tide("tide-idle-after-seed-") as tide:
        started = time.monotonic()
        create_many(tide, list(range(args.size)), 4, None)
        print(f"seeded {args.size} deployments in {time.monotonic() - started:.0f} s", flush=True)
        for window in range(args.windows):
            cpu, wall = tide.cpu_seconds(), time.monotonic()
            time.sleep(args.window_seconds)
            share = (tide.cpu_seconds() - cpu) / (time.monotonic() - wall)
            print(f"window {window}: idle CPU {100 * share:.1f}% of a core, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
