"""tide/autoscale is pure: no I/O libraries, no wall clock."""

from __future__ import annotations

import re
from pathlib import Path

ROOM = Path(__file__).resolve().parents[2] / "tide" / "autoscale"
FORBIDDEN = re.compile(
    r"time\.time\(|time\.monotonic\(|datetime\.now\(|^\s*(import|from)\s+"
    r"(aiohttp|httpx|fastapi|sqlalchemy|boto3|subprocess|socket|requests|asyncio|time)\b",
    re.MULTILINE,
)


def test_no_io_and_no_clock_in_the_decision_code() -> None:
    offenders = {
        path.name: FORBIDDEN.findall(path.read_text())
        for path in ROOM.glob("*.py")
        if path.name != "conformance.py"  # the CLI that reads cases.json
    }
    assert {name: hits for name, hits in offenders.items() if hits} == {}
