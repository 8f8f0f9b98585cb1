"""Why a policy's requests waited longer than the SLO on the suite's scenarios: a miss breakdown.

Usage: python bench/autoscale/misses.py [--policy tide] [--scenarios a,b] [--parking off|on]
       [--traces-dir ../shared/traces] [--cold-start 15] [--slo 2]

Replays each scenario as `tide sim --suite` does (same settings, same engine) and records the state the
gateway saw when each request arrived. Every request that waited more than the SLO is put in one class:

* `zero`     - no replica at all (scaled to zero): the first request(s) after an idle gap.
* `starting` - replicas but none ready, all still starting (a return queued behind its own cold start).
* `ramp+`    - ready replicas all full (or a queue), and a start already in progress: the scale-up came
               but one cold start too late.
* `ramp`     - ready replicas all full (or a queue), no start in progress: nothing asked for more yet.
* `free`     - a ready replica had room at arrival (the request waited behind an earlier queue).

At concurrency 1 `ramp+` / `ramp` are the "busy replica" misses (the spare used up). `zero` misses are
split by how long the deployment had been without load (the idle gap the keep-alive chose not to hold).
Each class is printed with its count and the points of the share within the SLO it would add if fixed.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from tide.autoscale import AutoscalerConfig
from tide.autoscale.autoscaler import ScaleDecision
from tide.sim.engine import Replay, SimSettings
from tide.sim.policies import ParkingSettings, parse_policies
from tide.sim.readers import read_trace
from tide.sim.service import ServiceModel
from tide.sim.suite import select_scenarios

CLASSES = ("zero", "starting", "ramp+", "ramp", "free")
GAP_BUCKETS = ((60.0, "<1m"), (600.0, "1-10m"), (3600.0, "10-60m"), (float("inf"), ">1h"))


class _Watched(Replay):
    """A replay that notes, for each arrival, which class a wait would fall in."""

    def __init__(
        self,
        config: AutoscalerConfig,
        arrivals: list[float],
        durations: list[float],
        settings: SimSettings,
        parks: bool,
        window: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(config, arrivals, durations, settings, parks)
        self.state: list[str] = [""] * len(arrivals)
        self.idle_for: list[float] = [0.0] * len(arrivals)
        self.empty_since = 0.0
        self.window = window  # decisions within it are kept (decisions.py)
        self.decisions: list[tuple[float, int, str]] = []

    def _arrive(self, index: int, t: float) -> None:
        ready = [r for r in self.replicas if r.ready and not r.draining]
        starting = any(not r.ready for r in self.replicas)
        if not self.replicas:
            kind = "zero"
        elif not ready:
            kind = "starting"
        elif self.queue or all(r.in_flight >= self.limit for r in ready):
            kind = "ramp+" if starting else "ramp"
        else:
            kind = "free"
        self.state[index] = kind
        self.idle_for[index] = t - self.empty_since if self.load == 0 else 0.0
        super()._arrive(index, t)

    def _decided(self, decision: ScaleDecision, t: float) -> None:
        window = self.window
        if window is not None and window[0] <= t <= window[1]:
            self.decisions.append((t, decision.desired, decision.reason))
        super()._decided(decision, t)

    def _event(self, t: float, kind: int, replica: object) -> None:
        super()._event(t, kind, replica)  # type: ignore[arg-type]
        if self.load == 0:
            self.empty_since = t


def watch(
    name: str, policy: str, args: argparse.Namespace, window: tuple[float, float] | None = None
) -> tuple[list[float], _Watched]:
    """Replay one scenario as the suite does, noting each arrival's class (and the decisions in `window`);
    returns the arrivals and the replay."""
    scenario = select_scenarios(name)[0]
    trace = read_trace(args.traces_dir / scenario.trace, select=scenario.select, jitter=scenario.jitter)
    parsed = parse_policies(
        policy, min_replicas=0, max_replicas=1000, concurrency=scenario.concurrency, parking=args.parking
    )[0]
    assert parsed.config is not None
    durations = ServiceModel(default_duration=scenario.default_duration).durations(trace)
    settings = ParkingSettings(mode=args.parking).apply(SimSettings(cold_start=args.cold_start, slo=args.slo))
    replay = _Watched(parsed.config, trace.arrivals, durations, settings, parsed.parks, window)
    replay.run(max(1.0, round(trace.span / 4000.0)))
    return list(trace.arrivals), replay


def breakdown(name: str, policy: str, args: argparse.Namespace) -> tuple[int, Counter[str], Counter[str]]:
    arrivals, replay = watch(name, policy, args)
    classes: Counter[str] = Counter()
    gaps: Counter[str] = Counter()
    for i, wait in enumerate(replay.waits):
        if wait <= args.slo + 1e-9:
            continue
        kind = replay.state[i]
        classes[kind] += 1
        if kind == "zero":
            gaps[next(label for limit, label in GAP_BUCKETS if replay.idle_for[i] < limit)] += 1
    return len(arrivals), classes, gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="tide")
    parser.add_argument("--scenarios", default="")
    parser.add_argument("--parking", default="off", choices=("off", "on", "profile"))
    parser.add_argument("--traces-dir", type=Path, default=Path("../shared/traces"))
    parser.add_argument("--cold-start", type=float, default=15.0)
    parser.add_argument("--slo", type=float, default=2.0)
    args = parser.parse_args()
    names = [s.name for s in select_scenarios(args.scenarios or None)]
    print(f"misses (wait > {args.slo:g}s) of {args.policy}, parking {args.parking}: count (points of share if fixed)")
    header = f"{'scenario':<20} {'requests':>8} {'share':>6}  " + "  ".join(f"{c:>13}" for c in CLASSES)
    print(header + "  zero by idle gap")
    for name in names:
        total, classes, gaps = breakdown(name, args.policy, args)
        missed = sum(classes.values())
        cells = "  ".join(f"{classes[c]:>5} ({100 * classes[c] / total:4.1f})" for c in CLASSES)
        by_gap = " ".join(f"{label}:{gaps[label]}" for _, label in GAP_BUCKETS if gaps[label])
        print(f"{name:<20} {total:>8,} {100 * (1 - missed / total):5.1f}%  {cells}  {by_gap}", flush=True)


if __name__ == "__main__":
    main()
