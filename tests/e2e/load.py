"""Load that e2e tests drive until the condition they test has happened, bounded in time: never a fixed
number of requests that a fast machine finishes before the condition is seen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.conftest import TideProcess
from tests.support.waiting import wait_until


def complete(tide: TideProcess, client: httpx.Client, model: str, max_tokens: int = 4) -> int:
    """One completion through the gateway; its status code."""
    body = {"model": model, "prompt": "The sea", "max_tokens": max_tokens}
    return client.post(f"{tide.gateway_url}/completions", json=body).status_code


def wait_until_gone(status: Callable[[], dict[str, Any]], timeout_s: float = 90.0) -> dict[str, Any]:
    """Poll a deployment's status until it has no replica; the last status. Fails at the deadline."""
    last: dict[str, Any] = {}

    def gone() -> bool:
        last.update(status())
        return not last["replicas"]

    wait_until(gone, timeout_s, "scale to zero", poll=0.3)
    return last


@dataclass
class LoadResult:
    reached: bool  # the condition was seen before the deadline
    failures: list[int] = field(default_factory=list)  # status codes other than 200


def load_until(
    tide: TideProcess,
    model: str,
    clients: int,
    reached: Callable[[], bool],
    timeout_s: float,
    max_tokens: int = 24,
) -> LoadResult:
    """`clients` threads send completions back to back until `reached()` is true (polled every 0.3 s) or
    `timeout_s` passes; then the load stops and every thread is joined."""
    result = LoadResult(reached=False)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                code = complete(tide, client, model, max_tokens)
                if code != 200:
                    result.failures.append(code)

    threads = [threading.Thread(target=load) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not result.reached:
            result.reached = reached()
            if not result.reached:
                time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return result
