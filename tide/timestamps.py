"""Instants as users type them: epoch seconds (`1764000000`, `1764000000.5`) or ISO-8601
(`2026-11-24T15:00:00Z`, `2026-11-24T16:00:00+01:00`, `2026-11-24`; no offset means UTC)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_instant(text: str) -> float:
    """Epoch seconds from `text`; ValueError with a readable message when it is neither form."""
    value = text.strip()
    if _NUMBER.fullmatch(value):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"{text!r} is not a finite number of seconds")
        return seconds
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is neither epoch seconds nor an ISO-8601 time like 2026-11-24T15:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_instant(seconds: float) -> str:
    """ISO-8601 in UTC with a `Z`, to the second when whole: `2026-11-24T15:00:00Z`."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
