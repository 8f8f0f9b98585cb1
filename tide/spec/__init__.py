"""Pure resource models of API.md and their validation. No I/O; everything else speaks these types."""

from tide.spec.catalog import Catalog, EngineInfo, InstanceTypeInfo, default_catalog
from tide.spec.deployment import (
    DEFAULT_GATEWAY_ID,
    AutoscalingSpec,
    DeploymentSpec,
    ResourcesSpec,
    RuntimeSpec,
    TrafficSpec,
    WeightsSpec,
    deployment_to_dict,
    legacy_fields,
    parse_deployment,
    parse_model_name,
    parse_name,
)
from tide.spec.durations import format_duration, parse_duration, parse_duration_option

__all__ = [
    "DEFAULT_GATEWAY_ID",
    "AutoscalingSpec",
    "Catalog",
    "DeploymentSpec",
    "EngineInfo",
    "InstanceTypeInfo",
    "ResourcesSpec",
    "RuntimeSpec",
    "TrafficSpec",
    "WeightsSpec",
    "default_catalog",
    "deployment_to_dict",
    "format_duration",
    "legacy_fields",
    "parse_deployment",
    "parse_duration",
    "parse_duration_option",
    "parse_model_name",
    "parse_name",
]
