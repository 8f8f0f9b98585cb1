"""Does a hash slow the Python code that runs after it? The gateway names each prompt by hashing its first
1152 bytes, then goes on with ordinary Python work; on a CPU with AVX-512 the `xxhash` package runs XXH3 on
inputs over 240 bytes with AVX-512 instructions, and the core slows around them (frequency licences). This
times a fixed piece of Python work right after each candidate hash, alternating, and prints the work's time
against the same work after no hash: x1.00 means the hash leaves the code after it alone.

    taskset -c 0 .venv/bin/python bench/prefix/avx_penalty.py      # pin it: a core of its own

Measured 2026-12-03 on the 2-core VM (AVX-512), two runs: XXH3 on 1152 bytes x1.08-1.09, XXH64 on 1152 bytes
and XXH3 on 200 bytes x1.00 (docs/ROUTING.md, "Gateway cost").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from xxhash import xxh3_64_intdigest, xxh64_intdigest

FIRST_CHUNK = b"x" * 1152
SHORT = b"y" * 200


def python_work() -> int:
    total = 0
    for i in range(300):
        total += i
    return total


def work_after(hash_once: Callable[[], object], rounds: int = 20_000) -> float:
    """Nanoseconds of `python_work` right after `hash_once`, averaged over `rounds`."""
    spent = 0.0
    for _ in range(rounds):
        hash_once()
        started = time.perf_counter()
        python_work()
        spent += time.perf_counter() - started
    return spent / rounds * 1e9


CANDIDATES: dict[str, Callable[[], object]] = {
    "no hash": lambda: None,
    "xxh3 1152 B": lambda: xxh3_64_intdigest(FIRST_CHUNK),
    "xxh64 1152 B": lambda: xxh64_intdigest(FIRST_CHUNK),
    "xxh3 200 B": lambda: xxh3_64_intdigest(SHORT),
}


def main(repeats: int = 7) -> None:
    times: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    for _ in range(repeats):
        for name, hash_once in CANDIDATES.items():
            times[name].append(work_after(hash_once))
    base = statistics.median(times["no hash"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<14} {median:7.0f} ns of Python work after it  x{median / base:.2f} (range {min(values):.0f}-{max(values):.0f})"
        )


if __name__ == "__main__":
    main()
