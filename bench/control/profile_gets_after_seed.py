"""Where the gets right after a large seed wait: seed N deployments into a fresh `tide up` (SQLite), then
py-spy the server while timing rounds of gets by id. Prints the get p50 per round and writes py-spy's raw
(collapsed) stacks, one line per stack with its sample count.

    python bench/control/profile_gets_after_seed.py --size 10000 --out /tmp/gets.txt
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.control.run import BASE, create_many, pct, py_spy_record, scratch_tide, time_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=12, help="how long py-spy records")
    parser.add_argument("--out", default="gets-after-seed.txt")
    args = parser.parse_args()
    with scratch_tide("tide-gets-after-seed-") as tide:
        started = time.monotonic()
        create_many(tide, list(range(args.size)), 4, None)
        print(f"seeded {args.size} deployments in {time.monotonic() - started:.0f} s", flush=True)
        spy = py_spy_record(tide, args.out, args.seconds)
        rng = random.Random(1)
        with tide.api() as api:
            for round_ in range(args.rounds):
                ids = [f"d{rng.randrange(args.size):05d}" for _ in range(args.gets)]
                gets, _ = time_calls(api, [f"{BASE}/{i}" for i in ids])
                print(f"round {round_}: get p50 {pct(gets, 0.5) * 1000:.2f} ms", flush=True)
        spy.wait()
        print(f"stacks in {args.out}")


if __name__ == "__main__":
    main()
