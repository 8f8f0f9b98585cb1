"""The gateways' traffic in the controller's /metrics: Prometheus counters and gauges per deployment."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tide.control.metrics import ControlMetrics
from tide.gateway.routes import DeploymentLoad


def samples(metrics: ControlMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_errors_in_flight_and_queued_per_deployment() -> None:
    metrics = ControlMetrics()
    metrics.set_gateway_loads(
        {
            "chat": DeploymentLoad(3, 2, {"chat-r1": 3}, 120, {"queue_full": 4, "upstream_timeout": 1}),
            "idle": DeploymentLoad(0, 0, {}, 0),
        }
    )
    got = samples(metrics)
    assert got[("tide_gateway_requests_total", (("deployment", "chat"),))] == 120
    assert got[("tide_gateway_requests_total", (("deployment", "idle"),))] == 0
    assert got[("tide_gateway_errors_total", (("code", "queue_full"), ("deployment", "chat")))] == 4
    assert got[("tide_gateway_errors_total", (("code", "upstream_timeout"), ("deployment", "chat")))] == 1
    assert got[("tide_gateway_in_flight", (("deployment", "chat"),))] == 3
    assert got[("tide_gateway_queued", (("deployment", "chat"),))] == 2


def test_prefix_index_corrections_per_replica() -> None:
    metrics = ControlMetrics()
    metrics.set_gateway_loads({"chat": DeploymentLoad(0, 0, {}, 9, prefix_corrections={"chat-r1": 2})})
    got = samples(metrics)
    assert got[("tide_gateway_prefix_index_corrections_total", (("deployment", "chat"), ("replica", "chat-r1")))] == 2


def test_a_deployment_gone_from_the_gateways_leaves_the_metrics() -> None:
    metrics = ControlMetrics()
    metrics.set_gateway_loads({"old": DeploymentLoad(0, 0, {}, 7)})
    metrics.set_gateway_loads({})
    assert not [key for key in samples(metrics) if key[0].startswith("tide_gateway_")]
