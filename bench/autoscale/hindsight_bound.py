"""The best a family of policy settings could do on the suite if each scenario got its own, in hindsight.

Usage: python bench/autoscale/hindsight_bound.py SUITE_JSON [SUITE_JSON ...] [--budget 2.3] [--prefix tide]

Reads the `suite.json` files that `tide sim --suite --out DIR` writes (same scenarios, any policies) and,
for every scenario, picks one of the policies whose name starts with `--prefix` (all of them with
`--prefix ''`), so that the mean share of waits within the SLO is as high as it can be while the
geo-mean cost / oracle stays within `--budget`. A single setting for every scenario cannot do better than
this; the gap between the two says how much a rule that adapts the setting per deployment could still
gain, and a bound below a target says the family cannot reach it.

The choice is made by a Lagrangian sweep (maximise share - mu x ln cost per scenario, for a grid of mu):
exact on the convex hull of each scenario's points, so it may miss a slightly better mix of interior
points; the printed pick always meets the budget.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

Point = tuple[float, float]  # (cost / oracle, share within the SLO)


def read_points(paths: list[Path], prefix: str) -> dict[str, dict[str, Point]]:
    points: dict[str, dict[str, Point]] = {}
    for path in paths:
        for scenario in json.loads(path.read_text())["scenarios"]:
            for row in scenario["policies"]:
                if row["policy"].startswith(prefix):
                    points.setdefault(scenario["scenario"], {})[row["policy"]] = (
                        row["cost_vs_oracle"],
                        row["within_slo"],
                    )
    return points


def _best_at(by_policy: dict[str, Point], mu: float) -> str:
    """The policy with the most share less `mu` x ln cost."""
    return max(by_policy, key=lambda name: by_policy[name][1] - mu * math.log(by_policy[name][0]))


def best_within(points: dict[str, dict[str, Point]], budget: float) -> tuple[float, float, dict[str, str]]:
    """(mean share, geo-mean cost, the policy picked per scenario) of the best pick found within `budget`."""
    scenarios = sorted(points)
    limit = len(scenarios) * math.log(budget)
    best: tuple[float, float, dict[str, str]] | None = None
    for step in range(8001):
        mu = step * 0.00025
        pick = {s: _best_at(points[s], mu) for s in scenarios}
        log_cost = sum(math.log(points[s][pick[s]][0]) for s in scenarios)
        share = sum(points[s][pick[s]][1] for s in scenarios)
        if log_cost <= limit + 1e-12 and (best is None or share > best[0] * len(scenarios)):
            best = (share / len(scenarios), math.exp(log_cost / len(scenarios)), pick)
    if best is None:
        raise SystemExit(f"no choice of the policies read stays within {budget}x")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="+", type=Path, help="suite.json files of `tide sim --suite --out`")
    parser.add_argument("--budget", type=float, default=2.3, help="geo-mean cost / oracle allowed")
    parser.add_argument("--prefix", default="tide", help="only policies whose name starts with this")
    args = parser.parse_args()
    points = read_points(args.suites, args.prefix)
    share, cost, pick = best_within(points, args.budget)
    variants = len({name for by_policy in points.values() for name in by_policy})
    print(
        f"best per-scenario pick of {variants} policies within {args.budget:g}x: "
        f"{100 * share:.1f}% mean share at {cost:.2f}x"
    )
    for scenario in sorted(pick):
        c, s = points[scenario][pick[scenario]]
        print(f"  {scenario:22s} {pick[scenario]:45s} {c:6.2f}x {100 * s:5.1f}%")


if __name__ == "__main__":
    main()
