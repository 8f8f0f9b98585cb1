"""The decision code is pure: no I/O libraries, no wall clock (tide/autoscale, tide/spec, tide/scheduling)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TIDE = Path(__file__).resolve().parents[2] / "tide"
PURE = ("autoscale", "spec", "scheduling")
FORBIDDEN = re.compile(
    r"time\.time\(|time\.monotonic\(|datetime\.now\(|^\s*(import|from)\s+"
    r"(aiohttp|httpx|fastapi|sqlalchemy|boto3|subprocess|socket|requests|asyncio|time)\b",
    re.MULTILINE,
)
EXEMPT = {TIDE / "autoscale" / "conformance.py"}  # the CLI that reads cases.json


@pytest.mark.parametrize("room", PURE)
def test_no_io_and_no_clock_in_the_decision_code(room: str) -> None:
    files = [p for p in (TIDE / room).rglob("*.py") if p not in EXEMPT]
    assert files
    offenders = {str(p.relative_to(TIDE)): FORBIDDEN.findall(p.read_text()) for p in files}
    assert {name: hits for name, hits in offenders.items() if hits} == {}
