"""Wait for a condition with a deadline, instead of sleeping and hoping: a loaded machine only takes longer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], timeout: float, awaited: str, poll: float = 0.1) -> None:
    """Poll `check` until it is truthy; after `timeout` seconds fail, saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {awaited}")
        time.sleep(poll)


async def wait_until_async(check: Callable[[], object], timeout: float, awaited: str, poll: float = 0.02) -> None:
    """`wait_until` inside an event loop: the loop keeps running while the condition is polled."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {awaited}")
        await asyncio.sleep(poll)
