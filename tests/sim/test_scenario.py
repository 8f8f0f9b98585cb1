"""Scenario files: defaults, trace shaping, and errors that name the field at fault."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tide.errors import FieldError
from tide.sim.scenario import parse_scenario
from tide.sim.scenario_files import load_scenario, load_workloads
from tide.sim.service import ServiceModel

from .contention_helpers import inventory

VALID: dict[str, Any] = {
    "inventory": inventory(2),
    "deployments": [
        {"name": "chat", "trace": "a.csv", "instanceType": "GPU", "priority": 800, "min": 1, "max": 4},
        {
            "name": "batch",
            "trace": "b.csv",
            "instanceType": "gpu",
            "profile": "knative",
            "autoscaling": {"window": "2m", "scaleToZeroRetention": 300},
            "capacityClasses": ["CAPACITY_CLASS_ON_DEMAND"],
            "offset": "1m",
            "timeScale": 2,
            "coldStart": "90s",
        },
    ],
}


def broken(path: str, value: Any) -> dict[str, Any]:
    """VALID with the value at a dotted path (`deployments.1.priority`) replaced; `...` deletes it."""
    raw = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = raw
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


def test_valid_scenario_and_its_defaults() -> None:
    chat, batch = parse_scenario(VALID).deployments
    assert chat.config.priority == 800 and chat.config.min_replicas == 1 and chat.config.max_replicas == 4
    assert chat.config.profile == "coreweave" and chat.config.concurrency == 8  # the API's defaults
    assert chat.capacity_classes == ("reserved", "on_demand") and chat.cold_start is None
    assert batch.config.max_replicas == 1000 and batch.config.initial_scale == 0  # starts at zero, like `tide sim`
    assert batch.config.stable_window == 120 and batch.config.scale_to_zero_retention == 300
    assert batch.capacity_classes == ("on_demand",) and batch.cold_start == 90
    assert (batch.trace.offset, batch.trace.time_scale) == (60, 2)


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("deployments.1.priority", 2000, "deployments[1].priority", "within 0-1000"),
        ("deployments.1.priority", "high", "deployments[1].priority", "integer"),
        ("deployments.0.name", ..., "deployments[0].name", "required"),
        ("deployments.1.name", "chat", "deployments[1].name", "duplicate"),
        ("deployments.0.trace", ..., "deployments[0].trace", "required"),
        ("deployments.0.max", 0, "deployments[0].max", ">= 1"),
        ("deployments.0.min", 5, "deployments[0].max", "autoscaling.min"),
        ("deployments.0.speed", 3, "deployments[0].speed", "unknown key"),
        ("deployments.1.profile", "fast", "deployments[1].profile", "unknown profile"),
        ("deployments.1.autoscaling", {"window": "2s"}, "deployments[1].autoscaling.window", ">= 6"),
        ("deployments.1.autoscaling", {"speed": 1}, "deployments[1].autoscaling.speed", "unknown key"),
        ("deployments.1.timeScale", 0, "deployments[1].timeScale", "> 0"),
        ("deployments.1.offset", "soon", "deployments[1].offset", "not a duration"),
        ("deployments.1.capacityClasses", ["spot"], "deployments[1].capacityClasses", "unknown capacity class"),
        ("deployments.0.instanceType", "B200", "deployments[0].instanceType", "unknown instance type 'B200'"),
        ("deployments.0.gpuCount", 2, "deployments[0].instanceType", "has 1 GPUs per instance"),
        ("deployments.0.format", "parquet", "deployments[0].format", "unknown trace format"),
        ("deployments", [], "deployments", "non-empty list"),
        ("inventory", ..., "inventory", "required"),
        ("inventory.instances", [{"type": "gpu", "zone": "z", "count": 0}], "inventory.instances[0].count", ">= 1"),
    ],
)
def test_errors_name_the_field(path: str, value: Any, field: str, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_scenario(broken(path, value))
    assert caught.value.field == field
    assert message in str(caught.value)


def test_reserved_only_without_a_claimed_instance_can_never_run() -> None:
    raw = broken("deployments.0.capacityClasses", ["CAPACITY_CLASS_RESERVED"])
    with pytest.raises(FieldError, match=r"no replica can ever be placed: no free reserved gpu") as caught:
        parse_scenario(raw)
    assert caught.value.field == "deployments[0].instanceType"


def test_traces_are_read_relative_to_the_traces_dir_then_shifted_and_stretched(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("timestamp\n10\n11\n13\n")
    (tmp_path / "b.csv").write_text("timestamp\n0\n4\n")
    file = tmp_path / "scenario.yaml"
    file.write_text(
        "inventory: {instanceTypes: [{id: gpu, gpuModel: H100, gpus: 1}], instances: [{type: gpu, zone: z}]}\n"
        "deployments:\n"
        "  - {name: a, trace: a.csv, instanceType: gpu}\n"
        f"  - {{name: b, trace: {tmp_path / 'b.csv'}, instanceType: gpu, offset: 5s, timeScale: 0.5}}\n"
    )
    a, b = load_workloads(load_scenario(file), tmp_path, ServiceModel(default_duration=3.0), seed=0)
    assert a.workload.arrivals == [0.0, 1.0, 3.0] and a.workload.durations == [3.0] * 3
    assert b.workload.arrivals == [5.0, 7.0] and b.workload.origin == 5.0


def test_a_missing_trace_or_bad_yaml_is_named(tmp_path: Path) -> None:
    file = tmp_path / "scenario.yaml"
    file.write_text(
        "inventory: {instanceTypes: [{id: gpu, gpuModel: H100, gpus: 1}], instances: [{type: gpu, zone: z}]}\n"
        "deployments: [{name: a, trace: nope.csv, instanceType: gpu}]\n"
    )
    with pytest.raises(FieldError, match="trace file not found") as caught:
        load_workloads(load_scenario(file), tmp_path, ServiceModel(), seed=0)
    assert caught.value.field == "deployments[0].trace"
    file.write_text("deployments: [\n")
    with pytest.raises(FieldError, match="not valid YAML"):
        load_scenario(file)
