"""Lifecycle announcements on stdout: one `TIDE_EVENT {json}` line per phase, flushed at once, so the
backend that launched an engine learns readiness the moment it happens. The one place the line's format
lives: engines write it with `emit_event`, backends (`tide/backends/local.py`, `warm_pool.py`) and tests
read it with `parse_event`."""

from __future__ import annotations

import json
import sys
from typing import Any

EVENT_PREFIX = "TIDE_EVENT "


def emit_event(phase: str, **fields: Any) -> None:
    line = EVENT_PREFIX + json.dumps({"phase": phase, **fields}, separators=(",", ":"))
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        # The launcher is gone (its end of the pipe closed): an announcement must never stop a drain.
        pass


def parse_event(line: str) -> dict[str, Any] | None:
    """The event in one stdout line, or None if the line is not an event (for launchers and tests)."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        event = json.loads(line[len(EVENT_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
