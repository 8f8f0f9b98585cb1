"""Validation rules of the Deployment spec: each rule has a case that fails if the rule broke."""

from __future__ import annotations

from typing import Any

import pytest

from tide.errors import FieldError
from tide.spec import (
    InstanceTypeInfo,
    default_catalog,
    deployment_to_dict,
    legacy_fields,
    parse_deployment,
    parse_duration,
)

CATALOG = default_catalog(
    builtin_version="0.1.0",
    vllm_versions=("0.11.2", "0.10.1"),
    instance_types=(InstanceTypeInfo("gpu-h100", "H100", 8, 640, 96),),
)


def base(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "llama-chat",
        "model": {"name": "llama-3-8b", "bucket": "models", "path": "llama/8b"},
        "runtime": {"engine": "vllm"},
    }
    spec.update(overrides)
    return spec


def legacy(**overrides: Any) -> dict[str, Any]:
    """The shape before the hosted one: `name` is also the model name, `weights` says where."""
    spec: dict[str, Any] = {
        "name": "llama-chat",
        "weights": {"bucket": "models", "path": "llama/8b"},
        "runtime": {"engine": "vllm"},
    }
    spec.update(overrides)
    return spec


def field_of(raw: dict[str, Any]) -> str:
    with pytest.raises(FieldError) as info:
        parse_deployment(raw, CATALOG)
    return info.value.field


def test_defaults_are_filled_in() -> None:
    spec = parse_deployment(base(), CATALOG)
    assert spec.runtime.version == "0.11.2"  # newest known
    assert spec.resources.instance_type == "gpu-h100"
    assert spec.resources.gpu_count == 1
    assert (spec.autoscaling.min, spec.autoscaling.max) == (1, 1)
    assert spec.autoscaling.capacity_classes == ("CAPACITY_CLASS_RESERVED", "CAPACITY_CLASS_ON_DEMAND")
    assert spec.traffic.weight == 100
    assert spec.disabled is False
    assert spec.gateway_ids == ("default",)


def test_model_names_the_route_and_the_weights() -> None:
    spec = parse_deployment(base(gatewayIds=["edge", "internal", "edge"]), CATALOG)
    assert (spec.name, spec.routing_name) == ("llama-chat", "llama-3-8b")
    assert spec.weights is not None and (spec.weights.bucket, spec.weights.path) == ("models", "llama/8b")
    assert spec.gateway_ids == ("edge", "internal")
    out = deployment_to_dict(spec)
    assert out["model"] == {"name": "llama-3-8b", "bucket": "models", "path": "llama/8b"}
    assert out["gatewayIds"] == ["edge", "internal"]
    assert "weights" not in out  # no filters: the hosted shape has no weights section
    assert legacy_fields(base()) == []


def test_old_shape_is_read_as_the_new_one() -> None:
    old = legacy(weights={"bucket": "models", "path": "llama/8b", "allowPatterns": ["*.json"]})
    assert legacy_fields(old) == ["weights.bucket", "weights.path"]
    spec = parse_deployment(old, CATALOG)
    assert spec.routing_name == "llama-chat"
    out = deployment_to_dict(spec)
    assert out["model"] == {"name": "llama-chat", "bucket": "models", "path": "llama/8b"}
    assert out["weights"] == {"allowPatterns": ["*.json"]}  # Tide's filters stay where they were
    assert parse_deployment(out, CATALOG) == spec


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (base(name="abc"), "name"),
        (base(name="x" * 64), "name"),
        (base(name="Llama_Chat"), "name"),
        (base(model=None), "model"),
        (base(model={"name": "llama-3-8b", "bucket": "models"}), "model.path"),
        (base(model={"bucket": "models", "path": "x"}), "model.name"),
        (base(model={"name": "l3", "bucket": "models", "path": "x"}), "model.name"),
        (base(model={"name": "meta/llama", "bucket": "models", "path": "x"}), "model.name"),
        (base(model={"name": "llama-3-8b", "bucket": "models", "path": "a/../b"}), "model.path"),
        (base(weights={"bucket": "models"}), "weights.bucket"),  # moved to model.bucket
        (base(gatewayIds=[]), "gatewayIds"),
        (base(gatewayIds=["Edge_1"]), "gatewayIds[0]"),
        (legacy(weights=None), "model"),
        (legacy(weights={"bucket": "models"}), "weights.path"),
        (base(runtime={"engine": "tgi"}), "runtime.engine"),
        (
            base(runtime={"engine": "vllm", "engineConfig": {"gpu-memory-utilization": "0.9"}}),
            "runtime.engineConfig.gpu-memory-utilization",
        ),
        (
            base(runtime={"engine": "vllm", "engineConfig": {"structured-outputs-config.backend": "outlines"}}),
            "runtime.engineConfig.structured-outputs-config.backend",
        ),
        (base(runtime={"engine": "vllm", "version": "latest"}), "runtime.version"),
        (base(resources={"gpuCount": 3}), "resources.gpuCount"),
        (base(resources={"gpuCount": 16}), "resources.gpuCount"),  # more than the type has
        (base(resources={"instanceType": "tpu-v5"}), "resources.instanceType"),
        (base(autoscaling={"min": 3, "max": 2}), "autoscaling.max"),
        (base(autoscaling={"min": -1}), "autoscaling.min"),
        (base(autoscaling={"concurrency": 0}), "autoscaling.concurrency"),
        (base(autoscaling={"priority": 1001}), "autoscaling.priority"),
        (base(autoscaling={"capacityClasses": ["CAPACITY_CLASS_SPOT"]}), "autoscaling.capacityClasses"),
        (base(autoscaling={"profile": "aggressive"}), "autoscaling.profile"),
        (base(autoscaling={"window": "sixty seconds"}), "autoscaling.window"),
        (base(autoscaling={"targetUtilization": 150}), "autoscaling.targetUtilization"),
        (base(traffic={"weight": 1001}), "traffic.weight"),
        (base(traffic={"weight": -1}), "traffic.weight"),
        (base(disabled="yes"), "disabled"),
        (base(replicas=3), "replicas"),
        (base(runtime={"engine": "external"}), "runtime.endpoints"),
        (base(runtime={"engine": "external", "endpoints": ["ftp://x"]}), "runtime.endpoints[0]"),
    ],
)
def test_bad_field_is_named(raw: dict[str, Any], field: str) -> None:
    assert field_of(raw) == field


def test_instance_type_is_case_insensitive() -> None:
    spec = parse_deployment(base(resources={"instanceType": "GPU-H100", "gpuCount": 8}), CATALOG)
    assert spec.resources.instance_type == "gpu-h100"
    assert spec.resources.gpu_count == 8


def test_engine_config_flag_with_empty_value_is_accepted() -> None:
    spec = parse_deployment(base(runtime={"engine": "vllm", "engineConfig": {"enable-auto-tool-choice": ""}}), CATALOG)
    assert spec.runtime.engine_config == {"enable-auto-tool-choice": ""}


def test_external_engine_needs_no_weights() -> None:
    raw = {
        "name": "tiny",
        "model": {"name": "tiny-remote"},
        "runtime": {"engine": "external", "endpoints": ["http://127.0.0.1:18000/v1/"]},
    }
    spec = parse_deployment(raw, CATALOG)
    assert spec.weights is None
    assert spec.routing_name == "tiny-remote"
    assert spec.runtime.endpoints == ("http://127.0.0.1:18000/v1",)


def test_max_follows_a_larger_min_when_omitted() -> None:
    assert parse_deployment(base(autoscaling={"min": 3}), CATALOG).autoscaling.max == 3


def test_round_trip_keeps_every_field() -> None:
    raw = base(
        autoscaling={"min": 0, "max": 4, "window": "90s", "scaleDownDelay": "15m", "profile": "knative"},
        traffic={"weight": 900},
    )
    spec = parse_deployment(raw, CATALOG)
    again = parse_deployment(deployment_to_dict(spec), CATALOG)
    assert again == spec
    assert deployment_to_dict(spec)["autoscaling"]["scaleDownDelay"] == "15m"


def test_omitted_fields_revert_to_defaults() -> None:
    first = parse_deployment(base(traffic={"weight": 5}, autoscaling={"max": 5}), CATALOG)
    second = parse_deployment(base(), CATALOG)
    assert (first.traffic.weight, first.autoscaling.max) == (5, 5)
    assert (second.traffic.weight, second.autoscaling.max) == (100, 1)


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("15m", 900), ("1h30m", 5400), ("500ms", 0.5), (30, 30)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


def test_replica_template_ignores_traffic_and_scaling() -> None:
    a = parse_deployment(base(traffic={"weight": 1}), CATALOG)
    b = parse_deployment(base(traffic={"weight": 999}, autoscaling={"max": 9}), CATALOG)
    c = parse_deployment(base(model={"name": "llama-3-8b", "bucket": "models", "path": "llama/70b"}), CATALOG)
    d = parse_deployment(base(model={"name": "llama-3-8b-v2", "bucket": "models", "path": "llama/8b"}), CATALOG)
    assert a.replica_template() == b.replica_template()
    assert a.replica_template() != c.replica_template()
    assert a.replica_template() != d.replica_template()  # the engine serves under the model name


BUILTIN = {"engine": "builtin"}


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (base(model={"name": "llama-3-8b", "bucket": "..", "path": "m"}), "model.bucket", "not valid"),
        (base(model={"name": "llama-3-8b", "bucket": "my/bucket", "path": "m"}), "model.bucket", "not valid"),
        (base(model={"name": "llama-3-8b", "bucket": "Models_Dir", "path": "m"}), "model.bucket", "lowercase"),
        (base(model={"name": "llama-3-8b", "bucket": "a\x00b", "path": "m"}), "model.bucket", "not valid"),
        (base(model={"name": "llama-3-8b", "bucket": "models", "path": "a/./b"}), "model.path", "'.'"),
        (base(model={"name": "llama-3-8b", "bucket": "models", "path": "a\x00b"}), "model.path", "NUL"),
        (base(runtime={**BUILTIN, "version": "99.0.0"}), "runtime.version", "newer than this node has"),
        (base(runtime={**BUILTIN, "engineConfig": {"dtype": "float16"}}), "runtime.engineConfig.dtype", "bfloat16"),
        (
            base(runtime={**BUILTIN, "engineConfig": {"max-batch-size": "-5"}}),
            "runtime.engineConfig.max-batch-size",
            "at least 1",
        ),
        (
            base(runtime={**BUILTIN, "engineConfig": {"max-batch-size": "many"}}),
            "runtime.engineConfig.max-batch-size",
            "integer",
        ),
        (
            base(runtime={**BUILTIN, "engineConfig": {"max-model-len": "0"}}),
            "runtime.engineConfig.max-model-len",
            "at least 1",
        ),
        (
            base(runtime={"engine": "vllm", "engineConfig": {"max-model-len": "4k"}}),
            "runtime.engineConfig.max-model-len",
            "integer",
        ),
        (
            base(runtime={"engine": "vllm", "engineConfig": {"enable-auto-tool-choice": "maybe"}}),
            "runtime.engineConfig.enable-auto-tool-choice",
            "flag",
        ),
        (base(autoscaling={"min": 0, "max": 1_000_000}), "autoscaling.max", "between 1 and 1000"),
        (legacy(weights={"bucket": "..", "path": "m"}), "weights.bucket", "not valid"),
    ],
)
def test_specs_that_can_never_start_are_refused_naming_the_field(raw: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_deployment(raw, CATALOG)
    assert info.value.field == field
    assert says in info.value.message


def test_typed_engine_config_values_that_fit_are_kept() -> None:
    spec = parse_deployment(
        base(runtime={**BUILTIN, "version": "0.1.0", "engineConfig": {"max-model-len": 512, "dtype": "float32"}}),
        CATALOG,
    )
    assert spec.runtime.engine_config == {"max-model-len": "512", "dtype": "float32"}
    assert parse_deployment(base(runtime={**BUILTIN, "version": "0.0.9"}), CATALOG).runtime.version == "0.0.9"


def test_builtin_engine_gets_max_model_len() -> None:
    from pathlib import Path

    from tide.engines.adapter import adapter_for

    plan = adapter_for("builtin").plan(
        model_dir=Path("/m"), host="h", port=1, served_name="x", engine_config={"max-model-len": "256"}, gpu_ids=()
    )
    assert plan.argv[plan.argv.index("--max-model-len") + 1] == "256"


def test_parameters_show_each_engines_config_schema() -> None:
    from tide.api.parameters import parameters_json

    engines = {e["engine"]: e for e in parameters_json(CATALOG)["runtimeParameters"]["engines"]}
    schema = {o["key"]: o for o in engines["builtin"]["runtimeConfigSchema"]}
    assert schema["max-batch-size"]["type"] == "integer" and schema["max-batch-size"]["minimum"] == 1
    assert "float16" not in schema["dtype"]["choices"]
