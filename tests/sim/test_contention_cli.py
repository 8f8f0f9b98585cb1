"""`tide sim --scenario` end to end on a tiny scenario: the table, --json, --out and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tide.cli import main

SCENARIO = """\
inventory:
  instanceTypes: [{id: gpu-1x, gpuModel: H100, gpus: 1}]
  instances: [{type: gpu-1x, zone: z, count: 2}]
deployments:
  - {name: high, trace: steady.csv, instanceType: gpu-1x, priority: 100, max: 2, concurrency: 2, profile: knative}
  - {name: low, trace: steady.csv, instanceType: gpu-1x, max: 2, concurrency: 2, profile: knative}
"""


def write_scenario(folder: Path, text: str = SCENARIO) -> Path:
    # 2 requests/s of 1.5 s for 5 minutes: each deployment wants 2 replicas; there are 2 GPUs.
    (folder / "steady.csv").write_text("timestamp,input,output\n" + "".join(f"{i * 0.5},0,60\n" for i in range(600)))
    scenario = folder / "scenario.yaml"
    scenario.write_text(text)
    return scenario


def test_table_and_summary_file(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["sim", "--scenario", str(scenario), "--traces-dir", str(tmp_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("scenario scenario.yaml: 2 deployments on 2 instances")
    header = next(line for line in lines if line.startswith("deployment"))
    for column in ("priority", "GPU-s", "preempted", "pending", "drain wait", "wait p99", "<= 2s"):
        assert column in header
    assert any(line.startswith("high ") for line in lines) and any(line.startswith("low ") for line in lines)
    assert any(line.startswith("inventory: 2 instances, 2 GPUs;") and "utilization" in line for line in lines)
    summary = json.loads((out / "summary.json").read_text())
    assert [d["deployment"] for d in summary["deployments"]] == ["high", "low"]
    assert (out / "scenario.png").read_bytes()[:4] == b"\x89PNG"


def test_json_output(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    result = CliRunner().invoke(
        main, ["sim", "--scenario", str(scenario), "--traces-dir", str(tmp_path), "--json", "--cold-start", "10s"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    high, low = summary["deployments"]
    assert summary["cold_start_s"] == 10 and summary["inventory"]["gpus"] == 2
    assert high["requests"] == low["requests"] == 600
    assert high["pending_s"] == 0 and low["pending_s"] > 200
    assert low["wait_p50_s"] > high["wait_p50_s"]
    assert 0 < summary["inventory"]["utilization"] <= 1
    assert high["trace"] == str(tmp_path / "steady.csv")


def test_usage_errors(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, SCENARIO.replace("priority: 100", "priority: 2000"))
    runner = CliRunner()
    bad = runner.invoke(main, ["sim", "--scenario", str(scenario), "--traces-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "deployments[0].priority: must be within 0-1000" in bad.output
    both = runner.invoke(main, ["sim", str(tmp_path / "steady.csv"), "--scenario", str(scenario)])
    assert both.exit_code == 2 and "not both" in both.output
    policies = runner.invoke(main, ["sim", "--scenario", str(scenario), "--policies", "knative"])
    assert policies.exit_code == 2 and "--policies" in policies.output
    neither = runner.invoke(main, ["sim"])
    assert neither.exit_code == 2 and "TRACE_PATH" in neither.output
