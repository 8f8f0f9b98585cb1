"""Where a seed's time goes: seed --start deployments into a fresh `tide up` (SQLite), then py-spy the server
while the next ones are created (4 clients). Prints how long each part of the seed took and writes py-spy's
raw (collapsed) stacks, one line per stack with its sample count.

    python bench/control/profile_seed.py --start 3000 --to 5000 --out /tmp/seed.txt
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.control.run import Tide, create_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=int, default=3000, help="created before py-spy starts")
    parser.add_argument("--to", type=int, default=5000, help="created in all")
    parser.add_argument("--out", default="seed.txt")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    root = Path(tempfile.mkdtemp(prefix="tide-profile-seed-"))
    (root / "data").mkdir()
    tide = Tide(root / "data", None)
    tide.start()
    try:
        started = time.monotonic()
        create_many(tide, list(range(args.start)), 4, None)
        print(f"first {args.start} creates in {time.monotonic() - started:.1f} s", flush=True)
        assert tide.process is not None
        record = [py_spy, "record", "-p", str(tide.process.pid), "-d", "3600", "-r", "50", "-f", "raw"]
        spy = subprocess.Popen([*record, "-o", args.out, "--nonblocking"])
        time.sleep(1)  # py-spy attached
        started = time.monotonic()
        create_many(tide, list(range(args.start, args.to)), 4, None)
        print(f"next {args.to - args.start} creates in {time.monotonic() - started:.1f} s", flush=True)
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has on an interrupt
        spy.wait()
        print(f"stacks in {args.out}")
    finally:
        tide.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
