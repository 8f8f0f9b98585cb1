"""Where the gets right after a large seed wait: seed N deployments into a fresh `tide up` (SQLite), then
py-spy the server while timing rounds of gets by id. Prints the get p50 per round and writes py-spy's raw
(collapsed) stacks, one line per stack with its sample count.

    python bench/control/profile_gets_after_seed.py --size 10000 --out /tmp/gets.txt
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.control.run import BASE, Tide, create_many, pct, time_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=12, help="how long py-spy records")
    parser.add_argument("--out", default="gets-after-seed.txt")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    root = Path(tempfile.mkdtemp(prefix="tide-gets-after-seed-"))
    (root / "data").mkdir()
    tide = Tide(root / "data", None)
    tide.start()
    try:
        started = time.monotonic()
        create_many(tide, list(range(args.size)), 4, None)
        print(f"seeded {args.size} deployments in {time.monotonic() - started:.0f} s", flush=True)
        assert tide.process is not None
        record = [py_spy, "record", "-p", str(tide.process.pid), "-d", str(args.seconds), "-r", "50"]
        spy = subprocess.Popen([*record, "-f", "raw", "-o", args.out, "--nonblocking"])
        time.sleep(1)  # py-spy attached
        rng = random.Random(1)
        with tide.api() as api:
            for round_ in range(args.rounds):
                ids = [f"d{rng.randrange(args.size):05d}" for _ in range(args.gets)]
                gets, _ = time_calls(api, [f"{BASE}/{i}" for i in ids])
                print(f"round {round_}: get p50 {pct(gets, 0.5) * 1000:.2f} ms", flush=True)
        spy.wait()
        print(f"stacks in {args.out}")
    finally:
        tide.stop()


if __name__ == "__main__":
    main()
