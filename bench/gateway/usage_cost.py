"""What reading token usage costs the gateway per response (tide/gateway/usage.py), next to a baseline
measured in the same run: parsing the same body with orjson (what reading `usage` by a JSON parse would
cost). Prints medians and ranges over 7 rounds, and the ratio.

    PYTHONPATH=. .venv/bin/python bench/gateway/usage_cost.py
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable

import orjson

from tide.gateway.usage import TailScanner

ROUNDS, NUMBER = 7, 20_000
BODY = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello " * 40}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52},
    }
)
EVENTS = [b'data: {"choices":[{"delta":{"content":"x"}}],"usage":null}\n\n'] * 64 + [
    b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":64,"total_tokens":76}}\n\n',
    b"data: [DONE]\n\n",
]


def microseconds(run: Callable[[], object]) -> list[float]:
    return [timeit.timeit(run, number=NUMBER) / NUMBER * 1e6 for _ in range(ROUNDS)]


def scan_body() -> tuple[int, int]:
    scanner = TailScanner()
    scanner.feed(BODY)
    return scanner.tokens()


def scan_stream() -> tuple[int, int]:
    scanner = TailScanner()
    for event in EVENTS:
        scanner.feed(event)
    return scanner.tokens()


def parse_body() -> object:
    return orjson.loads(BODY)["usage"]


def parse_stream() -> object:
    return orjson.loads(EVENTS[-2][6:])["usage"]  # the baseline parses only the one event with usage


def main() -> None:
    assert scan_body() == (12, 40) and scan_stream() == (12, 64)
    for what, scan, parse in (
        (f"JSON response ({len(BODY)} B)", scan_body, parse_body),
        (f"event stream ({len(EVENTS)} events)", scan_stream, parse_stream),
    ):
        ours, baseline = microseconds(scan), microseconds(parse)
        print(
            f"{what}: usage scan {statistics.median(ours):.2f} us [{min(ours):.2f}-{max(ours):.2f}], "
            f"orjson baseline {statistics.median(baseline):.2f} us [{min(baseline):.2f}-{max(baseline):.2f}], "
            f"ratio x{statistics.median(ours) / statistics.median(baseline):.2f}"
        )


if __name__ == "__main__":
    main()
