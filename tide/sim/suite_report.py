"""The suite's table: per scenario each policy's cost / oracle and share within the SLO, then the summary."""

from __future__ import annotations

from collections.abc import Sequence

from tide.sim.report import layout
from tide.sim.suite import FREQUENT_S, ScenarioOutcome, summarize


def suite_table(outcomes: Sequence[ScenarioOutcome], subject: str, slo: float) -> str:
    if not outcomes:
        return "(no scenarios)"
    policies = [s.policy for s in outcomes[0].scores]
    headers = ["scenario", "requests", *(f"{p} x / <={slo:g}s" for p in policies)]
    rows = [
        [
            o.scenario,
            f"{o.requests:,}",
            *(f"{o.score(p).cost_vs_oracle:.2f}x {o.score(p).within_slo * 100:5.1f}%" for p in policies),
        ]
        for o in outcomes
    ]
    _summary_rows(rows, outcomes, subject, policies, "")
    frequent = [o for o in outcomes if o.frequent]
    if 0 < len(frequent) < len(outcomes):
        # Issue 20's figures: the scenarios with at least one request per 2 hours, the sparser ones apart.
        _summary_rows(rows, frequent, subject, policies, f" ({len(frequent)}, >= 1 request/{FREQUENT_S / 3600:g}h)")
    return layout(headers, rows)


def _summary_rows(
    rows: list[list[str]], outcomes: Sequence[ScenarioOutcome], subject: str, policies: list[str], label: str
) -> None:
    summary = summarize(outcomes, subject)
    n = len(outcomes)
    rows.append(["", "", *("" for _ in policies)])
    rows.append(
        [f"geo-mean / mean{label}", "", *(f"{r.geomean_cost:.2f}x {r.mean_within_slo * 100:5.1f}%" for r in summary)]
    )
    rows.append([f"worst share{label}", "", *(f"{r.min_within_slo * 100:.1f}%" for r in summary)])
    rows.append(
        [f"{subject} dominates{label}", "", *("-" if r.policy == subject else f"{r.dominates}/{n}" for r in summary)]
    )
    rows.append(
        [f"dominates {subject}{label}", "", *("-" if r.policy == subject else f"{r.dominated_by}/{n}" for r in summary)]
    )
