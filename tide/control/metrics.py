"""Prometheus metrics of the control plane: cold-start phases, wake-to-ready time, replica counts, engine load,
and the gateways' traffic per deployment (requests, errors, in flight, queued; summed over gateways).

prometheus_client rather than hand-written text: it is the reference client, and its histogram and
exposition format are what every Prometheus server expects.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tide.backends.base import ReplicaPhase, ReplicaState
from tide.control.engine_load import Reading
from tide.gateway.routes import MANAGEMENT_TOKEN_KEY_ID, NO_KEY_ID, RETIRED_USAGE_ID, DeploymentLoad
from tide.gateway.usage import Usage

# Cold starts span tiny CPU models (seconds) to large GPU models (minutes).
COLD_START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
STARTING_PHASES = (ReplicaPhase.WAITING_FOR_CAPACITY, ReplicaPhase.DOWNLOADING_WEIGHTS, ReplicaPhase.ENGINE_LOAD)


class ControlMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.phase_seconds = Histogram(
            "tide_replica_start_phase_seconds",
            "Time a starting replica spent in each phase before it became ready",
            ["deployment", "phase"],
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )
        self.wake_to_ready = Histogram(
            "tide_wake_to_ready_seconds",
            "From the first request that found no ready replica to the first replica ready",
            ["deployment"],
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )
        self.replicas = Gauge("tide_replicas", "Replicas by state", ["deployment", "state"], registry=self.registry)
        self.parks = Counter(
            "tide_replica_parks", "Replicas parked instead of stopped", ["deployment"], registry=self.registry
        )
        self.wakes = Counter("tide_replica_wakes", "Parked replicas woken", ["deployment"], registry=self.registry)
        self.wake_seconds = Histogram(
            "tide_replica_wake_seconds",
            "From asking a parked replica to wake to its serving again",
            ["deployment"],
            buckets=COLD_START_BUCKETS,
            registry=self.registry,
        )
        self.engine_requests = Gauge(
            "tide_replica_engine_requests",
            "Requests a replica's engine reports, by state (running, waiting)",
            ["deployment", "replica", "state"],
            registry=self.registry,
        )
        self.kv_cache_usage = Gauge(
            "tide_replica_kv_cache_usage",
            "Fraction of a replica's KV cache in use (engines that report it)",
            ["deployment", "replica"],
            registry=self.registry,
        )
        self.prefix_cache_hit_rate = Gauge(
            "tide_replica_prefix_cache_hit_ratio",
            "Prompt tokens a replica's engine found in its prefix cache / looked up, since it started",
            ["deployment", "replica"],
            registry=self.registry,
        )
        self._engine_labels: set[tuple[str, str]] = set()
        self.gateway_traffic = GatewayTraffic()
        self.registry.register(self.gateway_traffic)

    def replica_ready(self, state: ReplicaState, ready_at: float) -> None:
        times = state.phase_times
        order = [p.value for p in STARTING_PHASES if p.value in times] + [ReplicaPhase.READY.value]
        for phase, following in itertools.pairwise(order):
            end = times.get(following, ready_at)
            self.phase_seconds.labels(state.deployment_id, phase).observe(max(0.0, end - times[phase]))
        first = times.get(ReplicaPhase.WAITING_FOR_CAPACITY.value)
        if first is not None:
            self.phase_seconds.labels(state.deployment_id, "total").observe(max(0.0, ready_at - first))

    def woke_and_ready(self, deployment_id: str, seconds: float) -> None:
        self.wake_to_ready.labels(deployment_id).observe(max(0.0, seconds))

    def set_replica_counts(self, deployment_id: str, ready: int, desired: int, parked: int = 0) -> None:
        self.replicas.labels(deployment_id, "ready").set(ready)
        self.replicas.labels(deployment_id, "desired").set(desired)
        self.replicas.labels(deployment_id, "parked").set(parked)

    def parked(self, deployment_id: str) -> None:
        self.parks.labels(deployment_id).inc()

    def woke(self, deployment_id: str, seconds: float) -> None:
        self.wakes.labels(deployment_id).inc()
        self.wake_seconds.labels(deployment_id).observe(max(0.0, seconds))

    def set_engine_loads(self, readings: Mapping[str, Reading]) -> None:
        """The last scrape of every replica; series of replicas that are gone are removed."""
        labels = {(reading.deployment_id, replica_id) for replica_id, reading in readings.items()}
        for deployment_id, replica_id in self._engine_labels - labels:
            for state in ("running", "waiting"):
                with contextlib.suppress(KeyError):
                    self.engine_requests.remove(deployment_id, replica_id, state)
            with contextlib.suppress(KeyError):
                self.kv_cache_usage.remove(deployment_id, replica_id)
            with contextlib.suppress(KeyError):
                self.prefix_cache_hit_rate.remove(deployment_id, replica_id)
        self._engine_labels = labels
        for replica_id, reading in readings.items():
            load = reading.load
            self.engine_requests.labels(reading.deployment_id, replica_id, "running").set(load.running)
            self.engine_requests.labels(reading.deployment_id, replica_id, "waiting").set(load.waiting)
            if load.kv_cache_usage is not None:
                self.kv_cache_usage.labels(reading.deployment_id, replica_id).set(load.kv_cache_usage)
            hit_rate = load.prefix_cache_hit_rate
            if hit_rate is not None:
                self.prefix_cache_hit_rate.labels(reading.deployment_id, replica_id).set(hit_rate)

    def set_gateway_loads(self, snapshot: Mapping[str, DeploymentLoad]) -> None:
        # Kept as given, not copied (every second, at 10,000 deployments): a gateway's snapshot is a view it
        # keeps up to date, and the collector reads whatever it holds when scraped.
        self.gateway_traffic.snapshot = snapshot

    def forget(self, deployment_id: str) -> None:
        for state in ("ready", "desired", "parked"):
            with contextlib.suppress(KeyError):
                self.replicas.remove(deployment_id, state)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class GatewayTraffic(Collector):
    """The gateways' counters as they last reported them. A custom collector, because they are totals the
    gateways keep (summed over live gateways), not events this process observes."""

    def __init__(self) -> None:
        self.snapshot: Mapping[str, DeploymentLoad] = {}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tide_gateway_requests", "Requests the gateways routed to a deployment", labels=["deployment"]
        )
        errors = CounterMetricFamily(
            "tide_gateway_errors",
            "Requests the gateways answered with their own error or cut short mid-stream, by error code",
            labels=["deployment", "code"],
        )
        in_flight = GaugeMetricFamily(
            "tide_gateway_in_flight", "Requests on a deployment's replicas now", labels=["deployment"]
        )
        queued = GaugeMetricFamily(
            "tide_gateway_queued", "Requests waiting for a replica with room now", labels=["deployment"]
        )
        corrections = CounterMetricFamily(
            "tide_gateway_prefix_index_corrections",
            "Responses whose engine reported fewer cached prompt tokens than the gateway's prefix index "
            "predicted for the replica, which shrank the index (docs/ROUTING.md)",
            labels=["deployment", "replica"],
        )
        for deployment_id, load in sorted(self.snapshot.items()):
            if deployment_id == RETIRED_USAGE_ID:  # usage of removed deployments only, counted below
                continue
            requests.add_metric([deployment_id], load.requests_total)
            for code, count in sorted(load.errors.items()):
                errors.add_metric([deployment_id, code], count)
            in_flight.add_metric([deployment_id], load.in_flight)
            queued.add_metric([deployment_id], load.queued)
            for replica_id, count in sorted(load.prefix_corrections.items()):
                corrections.add_metric([deployment_id, replica_id], count)
        yield from (requests, errors, in_flight, queued, corrections)
        by_key, by_gateway = usage_totals(self.snapshot)
        what = {
            "requests": "Requests routed to a deployment",
            "prompt_tokens": "Prompt tokens the engines reported in responses",
            "completion_tokens": "Completion tokens the engines reported in responses",
        }
        for name, help_text in what.items():
            per_key = CounterMetricFamily(
                f"tide_gateway_key_{name}",
                f"{help_text}, by gateway and API key id ('{MANAGEMENT_TOKEN_KEY_ID}': the management token; "
                f"'{NO_KEY_ID}': no key of the gateway's own)",
                labels=["gateway", "key"],
            )
            for (gateway_id, key_id), usage in sorted(by_key.items()):
                per_key.add_metric([gateway_id, key_id], getattr(usage, name))
            per_gateway = CounterMetricFamily(
                f"tide_gateway_usage_{name}", f"{help_text}, by gateway (all its keys)", labels=["gateway"]
            )
            for gateway_id, usage in sorted(by_gateway.items()):
                per_gateway.add_metric([gateway_id], getattr(usage, name))
            yield from (per_key, per_gateway)


def usage_totals(
    snapshot: Mapping[str, DeploymentLoad],
) -> tuple[dict[tuple[str, str], Usage], dict[str, Usage]]:
    """The gateways' usage summed over deployments: by (gateway id, key id), and by gateway id as the
    gateways counted it on their own (so the keys of a gateway add up to its total)."""
    by_key: dict[tuple[str, str], Usage] = {}
    by_gateway: dict[str, Usage] = {}
    for load in snapshot.values():
        for key, usage in load.key_usage.items():
            by_key.setdefault(key, Usage()).add(usage)
        for gateway_id, usage in load.gateway_usage.items():
            by_gateway.setdefault(gateway_id, Usage()).add(usage)
    return by_key, by_gateway


def usage_json(snapshot: Mapping[str, DeploymentLoad]) -> list[dict[str, Any]]:
    """`/usage`'s `gateways`: per gateway its totals and its keys' counts (ids only, never a key)."""
    by_key, by_gateway = usage_totals(snapshot)
    out = []
    for gateway_id, total in sorted(by_gateway.items()):
        keys = [
            {"keyId": key_id, **_usage_fields(usage)}
            for (g, key_id), usage in sorted(by_key.items())
            if g == gateway_id
        ]
        out.append({"gatewayId": gateway_id, **_usage_fields(total), "keys": keys})
    return out


def _usage_fields(usage: Usage) -> dict[str, int]:
    return {
        "requests": usage.requests,
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
    }
