"""Where a seed's time goes: seed --start deployments into a fresh `tide up` (SQLite), then py-spy the server
while the next ones are created (4 clients). Prints how long each part of the seed took and writes py-spy's
raw (collapsed) stacks, one line per stack with its sample count.

    python bench/control/profile_seed.py --start 3000 --to 5000 --out /tmp/seed.txt
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.control.run import create_many, py_spy_record, scratch_tide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=int, default=3000, help="created before py-spy starts")
    parser.add_argument("--to", type=int, default=5000, help="created in all")
    parser.add_argument("--out", default="seed.txt")
    args = parser.parse_args()
    with scratch_tide("tide-profile-seed-") as tide:
        started = time.monotonic()
        create_many(tide, list(range(args.start)), 4, None)
        print(f"first {args.start} creates in {time.monotonic() - started:.1f} s", flush=True)
        spy = py_spy_record(tide, args.out, 3600)
        started = time.monotonic()
        create_many(tide, list(range(args.start, args.to)), 4, None)
        print(f"next {args.to - args.start} creates in {time.monotonic() - started:.1f} s", flush=True)
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has on an interrupt
        spy.wait()
        print(f"stacks in {args.out}")


if __name__ == "__main__":
    main()
