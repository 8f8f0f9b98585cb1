"""Durations as API.md writes them: "60s", "15m", "1h30m", "500ms"; and "90d" for retention settings."""

from __future__ import annotations

import re

from tide.errors import FieldError

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
BLANKS = " \t\n\r\f\v"  # stripped around a duration (ASCII only, as the documented pattern says)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object, field: str) -> float:
    """Seconds from a duration string (or a bare number of seconds); FieldError naming `field` if bad."""
    if isinstance(value, bool):
        raise FieldError(field, f'must be a duration like "60s" or "15m", not {value!r}')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip(BLANKS)
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise FieldError(field, f'must be a duration like "60s", "15m" or "1h30m", not {value!r}')
    else:
        raise FieldError(field, f'must be a duration like "60s" or "15m", not {value!r}')
    if seconds < 0:
        raise FieldError(field, "must not be negative")
    return seconds


def parse_duration_option(text: str, field: str) -> float:
    """A duration as a command-line option or a scenario file gives it: a bare number of seconds ("45",
    "0.5") or a duration string as `parse_duration` reads them. The sign is the caller's to check (a bare
    "-5" comes back as -5.0, so an option can say it is negative); FieldError naming `field` if neither."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text, field)


def format_duration(seconds: float) -> str:
    """The shortest round-trippable form: 90 -> "90s", 900 -> "15m", 0.5 -> "500ms"."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole and whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"
