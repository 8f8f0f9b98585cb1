"""`tide sim` end to end on a small trace, and on the real Azure conv trace for speed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tide.sim.cli import sim_command

CONV = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "traces"
    / "azure_llm_2023"
    / "AzureLLMInferenceTrace_conv.csv"
)


def test_table_json_and_plot(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,input,output\n" + "".join(f"{i * 0.25},{500},{40}\n" for i in range(400)))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        sim_command, [str(trace), "--policies", "knative,baseten,oracle", "--out", str(out), "--cold-start", "10s"]
    )
    assert result.exit_code == 0, result.output
    for name in ("knative", "baseten", "oracle"):
        assert name in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [p["policy"] for p in summary["policies"]] == ["knative", "baseten", "oracle"]
    assert summary["policies"][2]["cost_vs_oracle"] == 1.0
    assert all(p["requests"] == 400 for p in summary["policies"])
    assert (out / "replicas.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_policy_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("0\n1\n")
    result = CliRunner().invoke(sim_command, [str(trace), "--policies", "knative:window=2s"])
    assert result.exit_code == 2
    assert "autoscaling.window" in result.output


@pytest.mark.skipif(not CONV.is_file(), reason=f"shared trace not found: {CONV}")
def test_one_hour_azure_conv_trace_is_fast() -> None:
    started = time.perf_counter()
    result = CliRunner().invoke(sim_command, [str(CONV), "--policies", "knative,coreweave,baseten,oracle"])
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 10.0
    assert "19366" in result.output
