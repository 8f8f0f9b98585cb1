"""Replay Knative's own test cases (cases.json) against this implementation.

Usage: python -m tide.autoscale.conformance PATH/cases.json
Prints each mismatch, then LAST a line `N/M expectations reproduced`. Exits 1 if any expectation in
the required sections is missed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tide.autoscale.buckets import TimedBuckets, WeightedBuckets, smoothing_coefficient
from tide.autoscale.kpa import INVALID, DeciderSpec, KpaScaler
from tide.autoscale.maxwindow import MaxWindow, TimedMaxWindow
from tide.autoscale.reconcile import Activity, ScaleToZeroInput, bound_desired, handle_scale_to_zero
from tide.autoscale.targets import panic_window_seconds, resolve_metric_target

REQUIRED_SECTIONS = (
    "scale_cases",
    "delay_window_cases",
    "aggregation_cases",
    "panic_window_cases",
    "resolve_target_cases",
)
FLOAT_TOLERANCE = 1e-9


@dataclass
class Tally:
    """Counts expectations per section and keeps a line per mismatch."""

    checked: dict[str, int] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def check(self, section: str, where: str, what: str, got: Any, want: Any, tol: float = 0.0) -> None:
        self.checked[section] = self.checked.get(section, 0) + 1
        if _equal(got, want, tol):
            return
        self.missed[section] = self.missed.get(section, 0) + 1
        self.mismatches.append(f"MISMATCH {section} / {where}: {what} = {got!r}, expected {want!r}")


def _equal(got: Any, want: Any, tol: float) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        if want is None or got is None:
            return want is got
        return math.isclose(float(got), float(want), rel_tol=FLOAT_TOLERANCE, abs_tol=max(tol, FLOAT_TOLERANCE))
    if tol and isinstance(got, int) and isinstance(want, int):
        return abs(got - want) <= tol
    return bool(got == want)


def _spec(raw: dict[str, Any]) -> DeciderSpec:
    return DeciderSpec(
        target_value=float(raw["target_value"]),
        total_value=float(raw["total_value"]),
        target_burst_capacity=float(raw["target_burst_capacity"]),
        panic_threshold=float(raw["panic_threshold"]),
        max_scale_up_rate=float(raw["max_scale_up_rate"]),
        max_scale_down_rate=float(raw["max_scale_down_rate"]),
        stable_window=float(raw["stable_window_s"]),
        scale_down_delay=float(raw["scale_down_delay_s"]),
        reachable=bool(raw["reachable"]),
        activation_scale=int(raw["activation_scale"]),
        scaling_metric=raw.get("scaling_metric") or "concurrency",
    )


def run_scale_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "scale_cases", case["name"]
    t0 = float(case["t0_unix"])
    initial = case["initial"]
    ready0 = 0 if initial.get("ready_error_at_creation") else int(initial["ready_pods_at_creation"])
    scaler = KpaScaler(_spec(case["spec"]), ready_at_creation=ready0, now=t0)
    override = initial.get("state_override")
    if override:
        pt = override.get("panic_time_s")
        scaler.panic_time = None if pt is None else t0 + pt
        scaler.max_panic_pods = int(override["max_panic_pods"])
    _check_state(tally, section, f"{name} (at creation)", scaler, initial.get("expect_state", {}), t0)
    for i, step in enumerate(case["steps"]):
        where = f"{name} step {i}"
        if "spec_update" in step:
            scaler.update(_spec(step["spec_update"]))
        now = t0 + float(step["t_s"])
        if step.get("ready_error") or step.get("metric_error"):
            result = INVALID
        else:
            result = scaler.scale(
                now, int(step["ready_pods"]), float(step["observed_stable"]), float(step["observed_panic"])
            )
        expect = step["expect"]
        tally.check(section, where, "desired_pod_count", result.desired, expect["desired_pod_count"])
        tally.check(section, where, "scale_valid", result.valid, expect["scale_valid"])
        if "excess_burst_capacity" in expect:
            tally.check(
                section,
                where,
                "excess_burst_capacity",
                result.excess_burst_capacity,
                expect["excess_burst_capacity"],
                float(expect.get("ebc_tolerance", 0)),
            )
        _check_state(tally, section, where, scaler, expect, t0)


def _check_state(tally: Tally, section: str, where: str, scaler: KpaScaler, expect: dict[str, Any], t0: float) -> None:
    if "panic" in expect:
        tally.check(section, where, "panic", scaler.in_panic, bool(expect["panic"]))
    if "panic_time_s" in expect:
        got = None if scaler.panic_time is None else scaler.panic_time - t0
        want = expect["panic_time_s"]
        tally.check(section, where, "panic_time_s", got, None if want is None else float(want))
    if "max_panic_pods" in expect:
        tally.check(section, where, "max_panic_pods", scaler.max_panic_pods, expect["max_panic_pods"])


def run_delay_window_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "delay_window_cases", case["name"]
    if case["kind"] == "index":
        window = MaxWindow(int(case["size"]))
        for i, (index, value, want) in enumerate(
            zip(case["indexes"], case["values"], case["expect_current_after_each"], strict=True)
        ):
            window.record(int(index), float(value))
            tally.check(section, f"{name} record {i}", "current", window.current(), float(want))
        return
    timed = TimedMaxWindow(float(case["duration_s"]), float(case["granularity_s"]))
    t0 = float(case["t0_unix"])
    for t, value in case["records"]:
        timed.record(t0 + float(t), float(value))
    tally.check(section, name, "current", timed.current(), float(case["expect_current"]))


def run_aggregation_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "aggregation_cases", case["name"]
    kind = case["kind"]
    if kind == "smoothing_coeff":
        got = round(smoothing_coefficient(int(case["num_buckets"])), 5)
        tally.check(section, name, "smoothing_coeff", got, float(case["expect"]))
        return
    buckets = WeightedBuckets(float(case["window_s"])) if kind == "weighted" else TimedBuckets(float(case["window_s"]))
    if kind == "weighted" and "smoothing_coeff" in case:
        tally.check(section, name, "smoothing_coeff", buckets.smoothing, float(case["smoothing_coeff"]))  # type: ignore[attr-defined]
    t0 = float(case["t0_unix"])
    for i, op in enumerate(case["ops"]):
        now = t0 + float(op["t_s"])
        if op["op"] == "record":
            buckets.record(now, float(op["value"]))
        else:
            tally.check(section, f"{name} op {i}", "average", buckets.average(now), float(op["expect"]))


def run_panic_window_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "panic_window_cases", case["name"]
    config, pa = case["config"], case["pa"]
    stable = float(pa.get("window_s", config["stable_window_s"]))
    pct = float(pa.get("panic_window_percentage", config["panic_window_percentage"]))
    tally.check(section, name, "stable_window_s", stable, float(case["expect"]["stable_window_s"]))
    tally.check(
        section, name, "panic_window_s", panic_window_seconds(stable, pct), float(case["expect"]["panic_window_s"])
    )


def run_resolve_target_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "resolve_target_cases", case["name"]
    config, pa = case["config"], case["pa"]
    target, total = resolve_metric_target(
        metric=pa.get("metric", "concurrency"),
        container_concurrency=int(pa.get("container_concurrency", 0)),
        target_annotation=pa.get("target"),
        utilization_annotation_percent=pa.get("target_utilization_percentage"),
        cc_target_fraction=float(config["container_concurrency_target_fraction"]),
        cc_target_default=float(config["container_concurrency_target_default"]),
        rps_target_default=float(config["rps_target_default"]),
        rps_target_utilization=float(config["target_utilization"]),
    )
    tally.check(section, name, "target", target, float(case["expect"]["target"]))
    tally.check(section, name, "total", total, float(case["expect"]["total"]))


def run_decider_init_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "decider_init_cases", case["name"]
    spec = case["spec"]
    tbc = float(spec["target_burst_capacity"])
    ebc = int(tbc) if tbc in (-1.0, 0.0) else int(float(spec["initial_scale"]) * float(spec["total_value"]) - tbc)
    tally.check(section, name, "desired_scale", -1, case["expect"]["desired_scale"])
    tally.check(section, name, "excess_burst_capacity", ebc, case["expect"]["excess_burst_capacity"])


def kpa_reconcile(case: dict[str, Any]) -> tuple[int, int | None, int, int]:
    """The reconciler's `scale()`: returns (returned scale, patched replicas, requeues, async probes)."""
    config, pa, ann = case["config"], case["pa"], case["pa"]["annotations"]
    activity = Activity(pa["active_state"])
    desired = int(case["decider_desired_scale"])
    unreachable = pa["reachability"] == "Unreachable"
    if desired < 0 and activity is not Activity.ACTIVATING:
        return desired, None, 0, 0
    initial = ann.get("initial-scale")
    if initial is None or (initial == 0 and not config["allow_zero_initial_scale"]):
        initial = config["initial_scale"]
    desired, _ = bound_desired(
        desired,
        min_scale=int(ann.get("min-scale", config["min_scale"])),
        max_scale=int(ann.get("max-scale", config["max_scale"])),
        initial_scale=int(initial),
        initialized=bool(pa["scale_target_initialized"]),
        reachable=not unreachable,
    )
    requeues = probes = 0
    if desired == 0:
        step = handle_scale_to_zero(
            ScaleToZeroInput(
                activity=activity,
                activity_age=float(pa["state_age_s"]),
                stable_window=float(ann.get("window_s", config["stable_window_s"])),
                grace_period=float(config["scale_to_zero_grace_period_s"]),
                retention=float(
                    ann.get("scale-to-zero-pod-retention-period_s", config["scale_to_zero_pod_retention_period_s"])
                ),
                activation_timeout=float(ann.get("progress-deadline_s", config["progress_deadline_s"])) + 30.0,
                reachable=not unreachable,
                enable_scale_to_zero=bool(config["enable_scale_to_zero"]),
                probe_activator=float(ann.get("target-burst-capacity", config["target_burst_capacity"])) != -1,
                activator_probe_ok=bool(case["activator_probe"]["ok"]),
                sks_proxy=case["sks"]["mode"] == "Proxy",
                proxy_for=float(case["sks"]["proxy_for_s"]),
            )
        )
        requeues = 1 if step.requeue_after is not None else 0
        probes = 1 if step.async_probe else 0
        if not step.apply:
            return step.scale, None, requeues, probes
        desired = step.scale
    patched = desired if desired != int(case["start_replicas"]) else None
    return desired, patched, requeues, probes


def run_kpa_scaler_case(case: dict[str, Any], tally: Tally) -> None:
    section, name = "kpa_scaler_cases", case["name"]
    returned, patched, requeues, probes = kpa_reconcile(case)
    expect = case["expect"]
    tally.check(section, name, "returned_scale", returned, expect["returned_scale"])
    tally.check(section, name, "patched_replicas", patched, expect["patched_replicas"])
    if expect.get("requeue_count") is not None:
        tally.check(section, name, "requeue_count", requeues, expect["requeue_count"])
    if expect.get("async_probe_count") is not None:
        tally.check(section, name, "async_probe_count", probes, expect["async_probe_count"])


RUNNERS: dict[str, Callable[[dict[str, Any], Tally], None]] = {
    "scale_cases": run_scale_case,
    "delay_window_cases": run_delay_window_case,
    "aggregation_cases": run_aggregation_case,
    "panic_window_cases": run_panic_window_case,
    "resolve_target_cases": run_resolve_target_case,
    "decider_init_cases": run_decider_init_case,
    "kpa_scaler_cases": run_kpa_scaler_case,
}


def run(cases: dict[str, Any]) -> Tally:
    tally = Tally()
    for section, runner in RUNNERS.items():
        for case in cases.get(section, []):
            try:
                runner(case, tally)
            except Exception as exc:  # a crash on one case is a mismatch, not an abort
                tally.checked[section] = tally.checked.get(section, 0) + 1
                tally.missed[section] = tally.missed.get(section, 0) + 1
                tally.mismatches.append(f"ERROR {section} / {case.get('name')}: {type(exc).__name__}: {exc}")
    return tally


def report_lines(tally: Tally) -> Iterator[str]:
    yield from tally.mismatches
    for section in RUNNERS:
        n = tally.checked.get(section, 0)
        yield f"{section}: {n - tally.missed.get(section, 0)}/{n}"
    total = sum(tally.checked.values())
    yield f"{total - sum(tally.missed.values())}/{total} expectations reproduced"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tide.autoscale.conformance PATH/cases.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    if not path.is_file():
        print(f"cases file not found: {path}", file=sys.stderr)
        return 2
    tally = run(json.loads(path.read_text()))
    for line in report_lines(tally):
        print(line)
    required_missed = sum(tally.missed.get(s, 0) for s in REQUIRED_SECTIONS)
    required_checked = sum(tally.checked.get(s, 0) for s in REQUIRED_SECTIONS)
    return 1 if required_missed or required_checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
