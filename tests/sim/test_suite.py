"""`tide sim --suite` on tiny synthetic copies of the shared traces (the real run is in docs/SIMULATOR.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tide.sim.cli import sim_command
from tide.sim.suite import (
    SCENARIOS,
    PolicyScore,
    Scenario,
    ScenarioOutcome,
    dominates,
    run_scenario,
    run_suite,
    select_scenarios,
    summarize,
)


def _fake_traces(root: Path) -> Path:
    """Every file the suite reads, each in its real format with a handful of requests."""
    azure = root / "azure_llm_2023"
    azure.mkdir(parents=True)
    for name in ("conv", "code"):
        rows = "".join(f"2023-11-16 18:15:{i:02d}.5000000,1000,40\n" for i in range(0, 40, 2))
        (azure / f"AzureLLMInferenceTrace_{name}.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + rows)
    moon = root / "mooncake_fast25"
    moon.mkdir()
    (moon / "conversation_trace.jsonl").write_text(
        "".join(json.dumps({"timestamp": i * 3000, "input_length": 800, "output_length": 40}) + "\n" for i in range(20))
    )
    functions = root / "azure_functions_2019_sample" / "functions"
    functions.mkdir(parents=True)
    for scenario in SCENARIOS:
        if scenario.trace.startswith("azure_functions"):
            (root / scenario.trace).write_text("minute,count\n0,3\n1,0\n5,2\n")
    gentd = root / "alibaba_gentd26"
    gentd.mkdir()
    header = "gmt_create,predict_type,exec_time_seconds,checkpoint_model_version_id\n"
    rows = "".join(
        f"2024-11-15 16:5{minute}:{second:02d},TXT_2_IMG,20,{model}\n"
        for model in ("M0001", "M0002", "M0004", "M0024")
        for minute, second in ((0, 0), (0, 0), (5, 30))  # two at once: concurrency 1 needs two replicas
    )
    (gentd / "lora_request_trace.csv").write_text(header + rows)
    return root


def test_suite_runs_every_scenario_and_prints_the_summary(tmp_path: Path) -> None:
    traces = _fake_traces(tmp_path / "traces")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        sim_command,
        ["--suite", "--traces-dir", str(traces), "--policies", "knative,baseten", "--workers", "1", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    for scenario in SCENARIOS:
        assert scenario.name in result.output
    assert "geo-mean / mean" in result.output
    assert "knative dominates" in result.output
    document = json.loads((out / "suite.json").read_text())
    assert [s["scenario"] for s in document["scenarios"]] == [s.name for s in SCENARIOS]
    assert document["subject"] == "knative"
    baseten = next(r for r in document["summary"] if r["policy"] == "baseten")
    assert 0 <= baseten["subject_dominates"] <= len(SCENARIOS)


def test_gentd_scenarios_serve_one_request_per_replica(tmp_path: Path) -> None:
    traces = _fake_traces(tmp_path / "traces")
    gentd = next(s for s in SCENARIOS if s.name == "gentd-M0001")
    assert gentd.concurrency == 1
    at_one = run_scenario(gentd, traces, "knative", cold_start=15.0, slo=2.0)
    at_eight = run_scenario(Scenario("x", gentd.trace, gentd.select, concurrency=8), traces, "knative", 15.0, 2.0)
    # The oracle serves the two simultaneous images on two replicas at concurrency 1, on one at 8.
    assert at_one.oracle_replica_seconds > at_eight.oracle_replica_seconds


def test_azure_functions_scenarios_use_one_second_requests(tmp_path: Path) -> None:
    traces = _fake_traces(tmp_path / "traces")
    sparse = next(s for s in SCENARIOS if s.name == "af-sparse")
    outcome = run_scenario(sparse, traces, "knative", cold_start=15.0, slo=2.0)
    # 3 separate 1-s requests in minute 0 and 2 in minute 5: each oracle replica lives 15 s + ~1 s.
    assert outcome.requests == 5
    assert outcome.oracle_replica_seconds <= 5 * 16.0 + 1e-6


def test_two_workers_give_the_same_numbers_as_one(tmp_path: Path) -> None:
    traces = _fake_traces(tmp_path / "traces")
    chosen = select_scenarios("azure-code,gentd-M0002")
    one = run_suite(chosen, traces, "knative,coreweave", workers=1)
    two = run_suite(chosen, traces, "knative,coreweave", workers=2)
    assert [(o.scenario, o.scores) for o in one] == [(o.scenario, o.scores) for o in two]


def test_missing_traces_and_unknown_scenarios_are_usage_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim_command, ["--suite", "--traces-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "missing alibaba_gentd26/lora_request_trace.csv" in " ".join(result.output.split())
    result = CliRunner().invoke(sim_command, ["--suite", "--scenarios", "nope", "--traces-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown scenario(s) nope" in " ".join(result.output.split())
    result = CliRunner().invoke(sim_command, ["--suite", "--concurrency", "4", "--traces-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--concurrency does not apply to --suite" in " ".join(result.output.split())


def _score(policy: str, cost: float, share: float) -> PolicyScore:
    return PolicyScore(policy, cost, share, cost * 100, 1)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((1.0, 0.9), (2.0, 0.9), True),  # cheaper, as good
        ((1.0, 0.9), (1.0, 0.9), True),  # equal counts as dominating
        ((1.0, 0.8), (2.0, 0.9), False),  # cheaper but more waits
        ((3.0, 1.0), (2.0, 0.9), False),  # fewer waits but dearer
    ],
)
def test_dominance(a: tuple[float, float], b: tuple[float, float], expected: bool) -> None:
    assert dominates(_score("a", *a), _score("b", *b)) is expected


def test_summary_geomean_mean_and_counts() -> None:
    outcomes = [
        ScenarioOutcome("s1", 1, 1.0, 1.0, (_score("tide", 2.0, 1.0), _score("knative", 4.0, 0.5)), 0.0),
        ScenarioOutcome("s2", 1, 1.0, 1.0, (_score("tide", 8.0, 0.5), _score("knative", 1.0, 1.0)), 0.0),
    ]
    tide, knative = summarize(outcomes, "tide")
    assert tide.geomean_cost == pytest.approx(4.0)
    assert tide.mean_within_slo == pytest.approx(0.75)
    assert tide.min_within_slo == 0.5
    assert (knative.dominates, knative.dominated_by) == (1, 1)


def test_suite_with_parking_prices_it_and_reports_the_frequent_scenarios_apart(tmp_path: Path) -> None:
    traces = _fake_traces(tmp_path / "traces")
    # A sparse stream (under one request per 2 hours) beside a busy one.
    (traces / "alibaba_gentd26" / "lora_request_trace.csv").write_text(
        "gmt_create,predict_type,exec_time_seconds,checkpoint_model_version_id\n"
        + "".join(f"2024-11-15 16:{m:02d}:00,TXT_2_IMG,20,M0001\n" for m in range(0, 60, 5))
        + "2024-11-15 10:00:00,TXT_2_IMG,20,M0024\n2024-11-16 10:00:00,TXT_2_IMG,20,M0024\n"
    )
    out = tmp_path / "out"
    args = ["--suite", "--traces-dir", str(traces), "--scenarios", "gentd-M0001,gentd-M0024", "--workers", "1"]
    result = CliRunner().invoke(
        sim_command, [*args, "--policies", "knative:parking=1,knative", "--parking-retention", "1h", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "parking: knative:parking=1 (wake 1s, parked cost 0.05, retention 3600s)" in result.output
    assert "geo-mean / mean (1, >= 1 request/2h)" in result.output
    document = json.loads((out / "suite.json").read_text())
    assert [r["policy"] for r in document["summary_frequent"]] == ["knative:parking=1", "knative"]
    busy = next(s for s in document["scenarios"] if s["scenario"] == "gentd-M0001")
    parked, plain = busy["policies"]
    assert parked["wakes"] > 0 and parked["parked_seconds"] > 0 and plain["wakes"] == 0
    # Requests 5 minutes apart wake a parked replica in a second instead of waiting a cold start.
    assert parked["within_slo"] > plain["within_slo"]
