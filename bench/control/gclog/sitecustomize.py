"""Measurement only: put this folder on PYTHONPATH of a bench run and every Python process it starts logs
its cycle collections, one line each for every full (generation-2) collection and any other over 10 ms:

    PYTHONPATH=.:bench/control/gclog TIDE_BENCH_GC_LOG=/tmp/gc python bench/control/run.py --sizes 100,10000
    # /tmp/gc.<pid>: "<unix time> gen2 <ms>ms collected=<n> frozen=<objects frozen>" (the largest file is
    # the `tide up` at the largest size)

For A/B runs of settings the tree does not have, in the `tide up` processes only (`--api-port` in argv):
TIDE_BENCH_GC_MODE=threshold:A,B,C (gc.set_threshold), TIDE_BENCH_GC_MODE=freeze (gc.freeze after each full
collection, never back), TIDE_BENCH_SWITCH=<s> (sys.setswitchinterval). bench/control/README.md, step 7.
"""

import gc
import os
import sys
import time


def _install() -> None:
    path = os.environ.get("TIDE_BENCH_GC_LOG")
    server = "--api-port" in sys.argv  # sys.argv is ['-m', ...] here: the module name is not in it yet
    switch = os.environ.get("TIDE_BENCH_SWITCH")
    if switch and server:
        sys.setswitchinterval(float(switch))
    mode = os.environ.get("TIDE_BENCH_GC_MODE", "") if server else ""
    if mode.startswith("threshold:"):
        gc.set_threshold(*[int(x) for x in mode.split(":")[1].split(",")])
    if not path and mode != "freeze":
        return
    out = open(f"{path}.{os.getpid()}", "a", buffering=1) if path else None  # noqa: SIM115 (open for the process)
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        generation = info["generation"]
        if out is not None and (generation == 2 or took > 0.01):
            line = f"{time.time():.3f} gen{generation} {took * 1000:.1f}ms collected={info['collected']}"
            out.write(f"{line} frozen={gc.get_freeze_count()}\n")
        if generation == 2 and mode == "freeze":
            gc.freeze()

    gc.callbacks.append(callback)


_install()
