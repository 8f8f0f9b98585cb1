"""One table per autoscaling field: the profiles, the spec and the simulator derive from it."""

from __future__ import annotations

import pytest

from tide.autoscale import PROFILE_NAMES, resolve_config
from tide.autoscale.fields import TUNING, TUNING_NAMES, profile_defaults
from tide.errors import FieldError
from tide.sim.policies import parse_policies
from tide.spec import InstanceTypeInfo, default_catalog, parse_deployment
from tide.spec.deployment import TUNING_FIELDS

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 16, 0, 0),))


def test_every_tuning_field_has_a_default_for_every_builtin_profile() -> None:
    for field in TUNING:
        assert field.defaults is not None and set(field.defaults) == set(PROFILE_NAMES), field.name


def test_the_spec_and_the_profiles_read_the_same_table() -> None:
    assert tuple(TUNING_FIELDS) == TUNING_NAMES
    assert {k: v for k, v in TUNING_FIELDS.items()} == {f.name: f.kind for f in TUNING}
    cfg = resolve_config("baseten", {}, min_replicas=0, max_replicas=2, concurrency=1)
    assert cfg.scale_down_delay == profile_defaults("baseten")["scaleDownDelay"] == 900


@pytest.mark.parametrize(
    ("field", "value"),
    [("window", "5s"), ("targetUtilization", 0), ("maxScaleUpRate", 1), ("scaleDownDelay", "1.5s")],
)
def test_one_range_check_serves_spec_and_sim(field: str, value: object) -> None:
    raw = {
        "name": "tiny-chat",
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {field: value},
    }
    with pytest.raises(FieldError) as spec_error:
        parse_deployment(raw, CATALOG)
    assert spec_error.value.field == f"autoscaling.{field}"
    number = float(str(value).rstrip("s"))
    with pytest.raises(FieldError) as config_error:
        resolve_config("knative", {field: number}, min_replicas=0, max_replicas=2, concurrency=1)
    assert config_error.value.field == f"autoscaling.{field}"
    with pytest.raises(ValueError, match=field):
        parse_policies(f"knative:{field}={value}", min_replicas=0, max_replicas=2, concurrency=1)


def test_the_spec_is_resolved_once_at_parse_time() -> None:
    raw = {
        "name": "tiny-chat",
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"profile": "knative", "min": 0, "max": 3, "window": "90s"},
    }
    spec = parse_deployment(raw, CATALOG)
    assert spec.autoscaling.resolved is spec.autoscaler_config()
    assert (spec.autoscaler_config().stable_window, spec.autoscaler_config().max_replicas) == (90, 3)
