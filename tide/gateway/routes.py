"""The routing table the controller pushes into the gateway, and the load signals it reads back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tide.gateway.usage import Usage
from tide.spec.deployment import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_WAIT_S
from tide.spec.routing import LEAST_LOADED


@dataclass(frozen=True)
class ReplicaEndpoint:
    replica_id: str
    base_url: str  # OpenAI base URL ending in /v1, e.g. http://127.0.0.1:40123/v1
    max_concurrency: int | None = None  # hard per-replica cap; None: no cap


@dataclass(frozen=True)
class DeploymentRoute:
    deployment_id: str
    model_name: str
    weight: int  # share among deployments with the same model name; 0 = out of rotation
    replicas: tuple[ReplicaEndpoint, ...]
    max_queue: int = DEFAULT_MAX_QUEUE  # requests allowed to wait for a replica; more get 429
    max_queue_wait_s: float = DEFAULT_MAX_QUEUE_WAIT_S  # longest wait for a replica; past it 503
    routing: str = LEAST_LOADED  # one of ROUTING_POLICIES
    # The deployment is known to be failing (weights missing, engine crash loop) and has no ready replica:
    # its requests get this message at once (503 deployment_failed) instead of waiting out the queue.
    failure: str | None = None


@dataclass(frozen=True)
class KeyGrant:
    """What one accepted bearer credential of a gateway may do, looked up by the SHA-256 (hex) of the key.
    `key_id` labels its usage (never the key); the limits are per one-minute window, None: no limit."""

    key_id: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None  # prompt + completion tokens, where the engine reports usage


MANAGEMENT_TOKEN_KEY_ID = "management-token"  # coreWeaveAuth: the management API's token, as a key id
NO_KEY_ID = "none"  # usage of requests a gateway let in without a key of its own (open, or a keys file)
# The load snapshot's entry for the usage of deployments that were removed (no deployment has this id).
RETIRED_USAGE_ID = ""


@dataclass(frozen=True)
class GatewayRoutes:
    """One gateway resource as the data plane sees it. Requests are told apart by their Host header: one
    of `hosts` picks this gateway; a Host no gateway claims goes to the one with id `default`."""

    gateway_id: str
    hosts: tuple[str, ...] = ()
    model_header: str = ""  # headerBasedRouting's header (lower case); "" = the gateway's own default
    models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model name -> its deployment ids here
    # The credentials this gateway accepts, by SHA-256 (hex): apiKeyAuth, the keys issued for it;
    # coreWeaveAuth, the management API's token. A request needs one of them.
    # None: the process-wide rule (its --api-keys-file keys, or open): the default coreWeaveAuth gateway.
    keys: Mapping[str, KeyGrant] | None = None


@dataclass(frozen=True)
class RouteTable:
    routes: Mapping[str, tuple[DeploymentRoute, ...]] = field(default_factory=dict)  # model name -> deployments
    # Gateway resources. Empty: one implicit gateway serving every route (a table from an older leader).
    gateways: tuple[GatewayRoutes, ...] = ()


@dataclass(frozen=True)
class DeploymentLoad:
    in_flight: int  # requests sent to a replica and not finished
    queued: int  # requests waiting for a replica with room
    per_replica_in_flight: dict[str, int]
    requests_total: int  # requests routed to this deployment since the gateway started
    # Requests the gateway answered with its own error (429, 502, 503, 504) or cut short mid-stream, by
    # error code (queue_full, queue_timeout, upstream_unavailable, upstream_timeout, upstream_disconnected,
    # unavailable), since the gateway started.
    errors: Mapping[str, int] = field(default_factory=dict)
    # The autoscaler's input: in flight + queued (and queued alone) time-averaged over the last second
    # (loadmeter.py). None from a gateway that does not report it: readers use in_flight + queued.
    load_average: float | None = None
    queued_average: float | None = None
    # Since the gateway started: requests routed to this deployment and the tokens their responses
    # reported, by (gateway id, key id) and, counted on their own, by gateway id.
    key_usage: Mapping[tuple[str, str], Usage] = field(default_factory=dict)
    gateway_usage: Mapping[str, Usage] = field(default_factory=dict)
    # Since the gateway started: by replica, responses whose engine reported less cached than the replica's
    # prefix index predicted, which shrank the index (tide/gateway/cachefeedback.py); only replicas with some.
    prefix_corrections: Mapping[str, int] = field(default_factory=dict)

    @property
    def average(self) -> float:
        return float(self.in_flight + self.queued) if self.load_average is None else self.load_average

    @property
    def queued_avg(self) -> float:
        return float(self.queued) if self.queued_average is None else self.queued_average
