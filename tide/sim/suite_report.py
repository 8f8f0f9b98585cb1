"""The suite's table: per scenario each policy's cost / oracle and share within the SLO, then the summary."""

from __future__ import annotations

from collections.abc import Sequence

from tide.sim.report import layout
from tide.sim.suite import ScenarioOutcome, summarize


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
    summary = summarize(outcomes, subject)
    rows.append(["", "", *("" for _ in policies)])
    rows.append(["geo-mean / mean", "", *(f"{r.geomean_cost:.2f}x {r.mean_within_slo * 100:5.1f}%" for r in summary)])
    rows.append(["worst share", "", *(f"{r.min_within_slo * 100:.1f}%" for r in summary)])
    n = len(outcomes)
    rows.append([f"{subject} dominates", "", *("-" if r.policy == subject else f"{r.dominates}/{n}" for r in summary)])
    rows.append(
        [f"dominates {subject}", "", *("-" if r.policy == subject else f"{r.dominated_by}/{n}" for r in summary)]
    )
    return layout(headers, rows)
