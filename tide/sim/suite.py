"""`tide sim --suite`: the 15 shared trace scenarios, each with its own settings, under several policies.

The scenarios are the ones the policy issues price against (docs/SIMULATOR.md, "The suite"). Traces are
read at run time from the traces folder (never copied into the project). Each scenario is replayed in its
own worker process (at most two: the machine is shared), and the summary compares the first policy (the
subject, `tide` by default) with each of the others: geo-mean cost over the oracle, mean share of waits
within the SLO, and on how many scenarios the subject dominates (cheaper or equal and at least as many
waits within the SLO) or is dominated by each peer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tide.autoscale import profile_names
from tide.sim.engine import SimSettings
from tide.sim.policies import ParkingSettings, parse_policies
from tide.sim.readers import read_trace
from tide.sim.runner import run_policies
from tide.sim.service import ServiceModel

MAX_WORKERS = 2  # the machine is shared: never more than two replays at once
# Issue 20 prices parking on the scenarios with at least one request per 2 hours (all but GenTD26 M0024,
# 64 requests in 18 days) and reports the sparser ones apart.
FREQUENT_S = 7200.0


@dataclass(frozen=True)
class Scenario:
    """One trace with the settings it is priced under."""

    name: str
    trace: str  # relative to the traces folder
    select: str | None = None
    concurrency: int = 8
    default_duration: float = 2.0  # service time when the trace has neither durations nor tokens
    jitter: float = 0.0


_AF = "azure_functions_2019_sample/functions/af2019_{}.csv"
_GENTD = "alibaba_gentd26/lora_request_trace.csv"
_MOONCAKE = "mooncake_fast25/conversation_trace.jsonl"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("azure-conv", "azure_llm_2023/AzureLLMInferenceTrace_conv.csv"),
    Scenario("azure-code", "azure_llm_2023/AzureLLMInferenceTrace_code.csv"),
    Scenario("mooncake", _MOONCAKE),
    Scenario("mooncake-jitter3s", _MOONCAKE, jitter=3.0),
    *(
        Scenario(f"af-{pattern}", _AF.format(pattern.replace("-", "_")), default_duration=1.0)
        for pattern in (
            "steady-high",
            "diurnal",
            "bursty-spiky",
            "single-burst",
            "onoff-daytime",
            "timer-every-5min",
            "sparse",
        )
    ),
    # Stable Diffusion: one image at a time per replica.
    *(
        Scenario(f"gentd-{model}", _GENTD, select=model, concurrency=1)
        for model in ("M0001", "M0002", "M0004", "M0024")
    ),
)


@dataclass(frozen=True)
class PolicyScore:
    policy: str
    cost_vs_oracle: float
    within_slo: float
    replica_seconds: float
    cold_starts: int
    parked_seconds: float = 0.0
    wakes: int = 0


@dataclass(frozen=True)
class ScenarioOutcome:
    scenario: str
    requests: int
    span_s: float
    oracle_replica_seconds: float
    scores: tuple[PolicyScore, ...]
    seconds: float  # wall time of this scenario's replays

    def score(self, policy: str) -> PolicyScore:
        return next(s for s in self.scores if s.policy == policy)

    @property
    def frequent(self) -> bool:
        """At least one request per FREQUENT_S on average (issue 20's 14 scenarios)."""
        return self.requests * FREQUENT_S >= self.span_s


def run_scenario(
    scenario: Scenario,
    traces_dir: Path,
    policies: str,
    cold_start: float,
    slo: float,
    seed: int = 0,
    parking: ParkingSettings | None = None,
) -> ScenarioOutcome:
    """Replay one scenario under every policy (a top-level function so that a worker process can run it)."""
    started = time.perf_counter()
    trace = read_trace(traces_dir / scenario.trace, select=scenario.select, seed=seed, jitter=scenario.jitter)
    parking = parking or ParkingSettings()
    parsed = [
        p
        for p in parse_policies(
            policies,
            min_replicas=0,
            max_replicas=1000,
            concurrency=scenario.concurrency,
            parking=parking.mode,
            retention=parking.retention,
        )
        if not p.is_oracle
    ]
    service = ServiceModel(default_duration=scenario.default_duration)
    settings = parking.apply(
        SimSettings(cold_start=cold_start, slo=slo, sample_step=max(1.0, round(trace.span / 4000.0)))
    )
    results, oracle_result = run_policies(trace, parsed, service, settings, concurrency=scenario.concurrency)
    oracle_cost = oracle_result.replica_seconds
    scores = tuple(
        PolicyScore(
            r.policy,
            r.replica_seconds / oracle_cost,
            r.within_slo,
            r.replica_seconds,
            r.cold_starts,
            r.parked_seconds,
            r.wakes,
        )
        for r in results
    )
    return ScenarioOutcome(scenario.name, len(trace), trace.span, oracle_cost, scores, time.perf_counter() - started)


def run_suite(
    scenarios: Sequence[Scenario],
    traces_dir: Path,
    policies: str,
    *,
    cold_start: float = 15.0,
    slo: float = 2.0,
    workers: int = MAX_WORKERS,
    seed: int = 0,
    parking: ParkingSettings | None = None,
) -> list[ScenarioOutcome]:
    """Every scenario, in the given order; the longest ones are handed out first."""
    workers = max(1, min(workers, MAX_WORKERS, len(scenarios)))
    if workers == 1:
        return [run_scenario(s, traces_dir, policies, cold_start, slo, seed, parking) for s in scenarios]
    # GenTD26 streams span weeks and dominate the wall time: start them first.
    order = sorted(range(len(scenarios)), key=lambda i: scenarios[i].trace != _GENTD)
    outcomes: list[ScenarioOutcome | None] = [None] * len(scenarios)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            i: pool.submit(run_scenario, scenarios[i], traces_dir, policies, cold_start, slo, seed, parking)
            for i in order
        }
        for i, future in futures.items():
            outcomes[i] = future.result()
    return [o for o in outcomes if o is not None]


def select_scenarios(names: str | None) -> list[Scenario]:
    """All scenarios, or the comma-separated subset by name (unknown names are an error)."""
    if not names:
        return list(SCENARIOS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in wanted]


def dominates(a: PolicyScore, b: PolicyScore) -> bool:
    """`a` costs no more than `b` and keeps at least as many waits within the SLO."""
    return a.cost_vs_oracle <= b.cost_vs_oracle + 1e-9 and a.within_slo >= b.within_slo - 1e-9


def strictly_dominates(a: PolicyScore, b: PolicyScore) -> bool:
    """`a` dominates `b` and is better in at least one of the two."""
    return dominates(a, b) and (a.cost_vs_oracle < b.cost_vs_oracle - 1e-9 or a.within_slo > b.within_slo + 1e-9)


@dataclass(frozen=True)
class PolicySummary:
    policy: str
    geomean_cost: float
    mean_within_slo: float
    min_within_slo: float
    dominates: int  # scenarios where the subject dominates this policy (subject row: -)
    dominated_by: int  # scenarios where this policy strictly dominates the subject


def summarize(outcomes: Sequence[ScenarioOutcome], subject: str) -> list[PolicySummary]:
    """One row per policy, in the order replayed; dominance counts are against `subject`."""
    if not outcomes:
        return []
    policies = [s.policy for s in outcomes[0].scores]
    rows: list[PolicySummary] = []
    for policy in policies:
        scores = [o.score(policy) for o in outcomes]
        mine = [o.score(subject) for o in outcomes]
        rows.append(
            PolicySummary(
                policy,
                math.exp(sum(math.log(max(s.cost_vs_oracle, 1e-12)) for s in scores) / len(scores)),
                sum(s.within_slo for s in scores) / len(scores),
                min(s.within_slo for s in scores),
                sum(1 for m, s in zip(mine, scores, strict=True) if dominates(m, s)) if policy != subject else -1,
                sum(1 for m, s in zip(mine, scores, strict=True) if strictly_dominates(s, m))
                if policy != subject
                else -1,
            )
        )
    return rows


def as_json(outcomes: Sequence[ScenarioOutcome], subject: str, meta: dict[str, object]) -> dict[str, object]:
    return {
        **meta,
        "subject": subject,
        "scenarios": [
            {
                "scenario": o.scenario,
                "requests": o.requests,
                "span_s": round(o.span_s, 3),
                "oracle_replica_seconds": round(o.oracle_replica_seconds, 3),
                "seconds": round(o.seconds, 3),
                "policies": [
                    {
                        "policy": s.policy,
                        "cost_vs_oracle": round(s.cost_vs_oracle, 4),
                        "within_slo": round(s.within_slo, 5),
                        "replica_seconds": round(s.replica_seconds, 3),
                        "cold_starts": s.cold_starts,
                        "parked_seconds": round(s.parked_seconds, 3),
                        "wakes": s.wakes,
                    }
                    for s in o.scores
                ],
            }
            for o in outcomes
        ],
        "summary": _summary_json(outcomes, subject),
        "summary_frequent": _summary_json([o for o in outcomes if o.frequent], subject),
    }


def _summary_json(outcomes: Sequence[ScenarioOutcome], subject: str) -> list[dict[str, object]]:
    return [
        {
            "policy": r.policy,
            "geomean_cost_vs_oracle": round(r.geomean_cost, 4),
            "mean_within_slo": round(r.mean_within_slo, 5),
            "min_within_slo": round(r.min_within_slo, 5),
            **({"subject_dominates": r.dominates, "dominates_subject": r.dominated_by} if r.policy != subject else {}),
        }
        for r in summarize(outcomes, subject)
    ]


def default_policies() -> str:
    """The subject (`tide` where it is registered) first, then the hosted profiles it is compared with."""
    peers = ("knative", "coreweave", "baseten")
    return ",".join((("tide",) if "tide" in profile_names() else ()) + peers)
