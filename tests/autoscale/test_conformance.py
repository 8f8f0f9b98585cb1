"""Knative's own test cases, replayed (ALGORITHM.md section 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tide.autoscale import conformance

REPO = Path(__file__).resolve().parents[2]
CASES = REPO.parent / "shared" / "knative" / "cases.json"
needs_cases = pytest.mark.skipif(not CASES.is_file(), reason=f"Knative cases file not found at {CASES}")


@needs_cases
def test_every_knative_expectation_is_reproduced() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tide.autoscale.conformance", str(CASES)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [line for line in lines if line.startswith(("MISMATCH", "ERROR"))]
    done, total = lines[-1].split()[0].split("/")
    assert lines[-1].endswith("expectations reproduced")
    assert done == total and int(total) > 500


@needs_cases
def test_conformance_reports_a_broken_expectation() -> None:
    cases = json.loads(CASES.read_text())
    case = cases["scale_cases"][0]
    case["steps"][0]["expect"]["desired_pod_count"] += 1
    tally = conformance.run({"scale_cases": [case]})
    lines = list(conformance.report_lines(tally))
    assert lines[0].startswith("MISMATCH scale_cases")
    assert lines[-1] != f"{sum(tally.checked.values())}/{sum(tally.checked.values())} expectations reproduced"
    assert tally.missed["scale_cases"] == 1


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert conformance.main([str(tmp_path / "nope.json")]) == 2
