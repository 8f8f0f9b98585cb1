"""The controller <-> gateway channel, the pure half: summed load signals.

Scaled out, several gateway processes follow one controller. The controller pushes each of them the
full route table (at once on subscribe, again on every change); each gateway posts its load snapshot
every second, tagged with its gateway id and the route version it has applied. The controller sums
in-flight and queued requests over the gateways heard from in the last `GATEWAY_LIVE_S` seconds.

No I/O here: the clock is a parameter. `tide/control/channel_http.py` puts this on the wire, in the format
of `tide/gateway/wire.py` (shared with the gateway processes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from tide.gateway.routes import DeploymentLoad
from tide.gateway.usage import Usage
from tide.timing import GATEWAY_LIVE_S

K = TypeVar("K")

# -- summing load over gateways ----------------------------------------------------------------------


@dataclass
class GatewayReport:
    at: float
    routes_version: int
    loads: dict[str, DeploymentLoad] = field(default_factory=dict)


class LoadAggregator:
    """The last report of every gateway; sums over the live ones.

    In-flight and queued counts are summed over live gateways. Request and error totals are not: a
    gateway that stops reporting would take its total out of the sum and the counter would go backwards.
    They are accumulated from each gateway's increments instead, so they only ever grow while this
    controller runs (a gateway seen for the first time, or restarted, adds all it reports).
    """

    def __init__(self, live_s: float = GATEWAY_LIVE_S) -> None:
        self.live_s = live_s
        self.reports: dict[str, GatewayReport] = {}
        self._requests: dict[str, int] = {}  # deployment -> requests routed, over all gateways ever seen
        self._errors: dict[str, dict[str, int]] = {}  # deployment -> code -> count, likewise
        self._corrections: dict[str, dict[str, int]] = {}  # deployment -> replica -> prefix corrections, likewise
        # deployment -> (gateway id, key id) -> usage, and deployment -> gateway id -> usage, likewise
        self._key_usage: dict[str, dict[tuple[str, str], Usage]] = {}
        self._gateway_usage: dict[str, dict[str, Usage]] = {}

    def report(self, gateway_id: str, loads: Mapping[str, DeploymentLoad], now: float, routes_version: int = 0) -> None:
        previous = self.reports.get(gateway_id)
        before = previous.loads if previous is not None else {}
        for deployment_id, load in loads.items():
            last = before.get(deployment_id)
            self._requests[deployment_id] = self._requests.get(deployment_id, 0) + _increase(
                load.requests_total, last.requests_total if last is not None else 0
            )
            errors = self._errors.setdefault(deployment_id, {})
            for code, count in load.errors.items():
                errors[code] = errors.get(code, 0) + _increase(count, last.errors.get(code, 0) if last else 0)
            corrections = self._corrections.setdefault(deployment_id, {})
            for replica_id, count in load.prefix_corrections.items():
                corrections[replica_id] = corrections.get(replica_id, 0) + _increase(
                    count, last.prefix_corrections.get(replica_id, 0) if last else 0
                )
            _add_increase(self._key_usage.setdefault(deployment_id, {}), load.key_usage, last.key_usage if last else {})
            _add_increase(
                self._gateway_usage.setdefault(deployment_id, {}),
                load.gateway_usage,
                last.gateway_usage if last else {},
            )
        self.reports[gateway_id] = GatewayReport(now, routes_version, dict(loads))

    def live(self, now: float) -> dict[str, GatewayReport]:
        # Forget the long-dead ones so the map stays small.
        for gateway_id in [g for g, r in self.reports.items() if now - r.at > 10 * self.live_s]:
            del self.reports[gateway_id]
        return {g: r for g, r in self.reports.items() if now - r.at < self.live_s}

    def snapshot(self, now: float) -> dict[str, DeploymentLoad]:
        out: dict[str, DeploymentLoad] = {}
        for report in self.live(now).values():
            for deployment_id, load in report.loads.items():
                prev = out.get(deployment_id)
                out[deployment_id] = load if prev is None else _added(prev, load)
        return {
            deployment_id: replace(
                load,
                requests_total=self._requests.get(deployment_id, 0),
                errors=dict(self._errors.get(deployment_id, {})),
                key_usage={k: replace(u) for k, u in self._key_usage.get(deployment_id, {}).items()},
                gateway_usage={g: replace(u) for g, u in self._gateway_usage.get(deployment_id, {}).items()},
                prefix_corrections=dict(self._corrections.get(deployment_id, {})),
            )
            for deployment_id, load in out.items()
        }

    def in_flight(self, replica_id: str, now: float, routes_version: int = 0) -> int:
        """Requests on a replica summed over live gateways.

        A live gateway whose last report predates `routes_version` (it has not yet confirmed the table
        that took the replica out of rotation) counts as one request, so a drain waits for it.
        """
        total = 0
        for report in self.live(now).values():
            n = sum(load.per_replica_in_flight.get(replica_id, 0) for load in report.loads.values())
            if n == 0 and report.routes_version < routes_version:
                n = 1
            total += n
        return total

    def gateways(self, now: float) -> list[str]:
        return sorted(self.live(now))


def _added(a: DeploymentLoad, b: DeploymentLoad) -> DeploymentLoad:
    return DeploymentLoad(
        a.in_flight + b.in_flight,
        a.queued + b.queued,
        _sum_counts(a.per_replica_in_flight, b.per_replica_in_flight),
        a.requests_total + b.requests_total,
        _sum_counts(a.errors, b.errors),
        # A gateway without the averages counts with its instantaneous numbers.
        None if a.load_average is None and b.load_average is None else a.average + b.average,
        None if a.queued_average is None and b.queued_average is None else a.queued_avg + b.queued_avg,
    )


def _sum_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, n in b.items():
        out[key] = out.get(key, 0) + n
    return out


def _add_increase(into: dict[K, Usage], now: Mapping[K, Usage], before: Mapping[K, Usage]) -> None:
    """Add how much each usage counter of one gateway grew since its last report (see `_increase`)."""
    for key, usage in now.items():
        last = before.get(key, Usage())
        total = into.setdefault(key, Usage())
        total.requests += _increase(usage.requests, last.requests)
        total.prompt_tokens += _increase(usage.prompt_tokens, last.prompt_tokens)
        total.completion_tokens += _increase(usage.completion_tokens, last.completion_tokens)


def _increase(now: int, before: int) -> int:
    """How much a gateway's counter grew; a smaller value means it restarted from zero."""
    return now - before if now >= before else now
