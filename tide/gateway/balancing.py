"""Live routing state: per-replica in-flight counts, per-deployment load and queue (activator.py), the pickers.

Deployments sharing a model name split traffic by smooth weighted round-robin (nginx's algorithm:
deterministic, and interleaved rather than bursty). Within a deployment the replica with the fewest
requests in flight wins, ties broken round-robin (or, for `prefix-aware` deployments, the replica most
likely to hold the prompt's prefix cached, weighed against load: tide/gateway/prefix.py); replicas that
recently failed are used only when no healthy one has room.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from tide.gateway.activator import ActivatorQueue, QueueSettings
from tide.gateway.cachefeedback import CacheFeedback
from tide.gateway.loadmeter import LoadMeter
from tide.gateway.prefix import TOUCH_BATCH, PrefixAwarePolicy, PrefixTable
from tide.gateway.routes import DeploymentRoute, ReplicaEndpoint
from tide.gateway.usage import Usage
from tide.spec.routing import PREFIX_AWARE


class ReplicaState:
    __slots__ = (
        "active", "address", "base_url", "cache_feedback", "deployment", "host_header", "in_flight",
        "max_concurrency", "path_prefix", "prefix_held", "prefix_index", "replica_id", "unhealthy_until", "use_tls",
    )  # fmt: skip

    def __init__(self, endpoint: ReplicaEndpoint, deployment: DeploymentState) -> None:
        self.replica_id = endpoint.replica_id
        self.deployment = deployment
        self.in_flight = 0
        self.unhealthy_until = 0.0
        self.active = True  # False once the routing table dropped it (draining)
        # What the replica likely holds in its prefix cache; a new replica (or a restarted one, at a new
        # address or after a failure) starts empty. Attached to its deployment's table of who holds what.
        self.prefix_index = deployment.prefix_table.index()
        # The engine's reports of what it found cached, which size the index (cachefeedback.py).
        self.cache_feedback = CacheFeedback(self.prefix_index.capacity)
        # How many of the prompt's chunks its index held when a prefix-aware pick last chose it: read (and
        # reset) by the exchange started on it right after, to check against the engine's report.
        self.prefix_held = 0
        self.base_url = ""
        self.update(endpoint)

    def update(self, endpoint: ReplicaEndpoint) -> None:
        url = urlsplit(endpoint.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"replica {endpoint.replica_id}: base_url must be http(s)://host[:port]/v1")
        if endpoint.base_url != self.base_url:
            self.prefix_index.clear()
        self.base_url = endpoint.base_url
        self.use_tls = url.scheme == "https"
        port = url.port or (443 if self.use_tls else 80)
        self.address = (url.hostname, port)
        self.host_header = url.netloc.encode()
        self.path_prefix = url.path.rstrip("/").encode()  # e.g. b"/v1"
        self.max_concurrency = endpoint.max_concurrency

    def has_room(self) -> bool:
        return self.max_concurrency is None or self.in_flight < self.max_concurrency

    def healthy(self, now: float) -> bool:
        return self.unhealthy_until <= now


class DeploymentState:
    def __init__(
        self,
        route: DeploymentRoute,
        queue_settings: QueueSettings | None = None,
        touched: set[str] | None = None,
    ) -> None:
        self.deployment_id = route.deployment_id
        # The gateway's set of deployments whose load answer may have changed since its last snapshot
        # (Gateway.load_snapshot recomputes only those): every change of a counter below adds this one.
        self._touched = touched if touched is not None else set()
        self.replicas: list[ReplicaState] = []  # set through replace_replicas (tests may assign new ones)
        self.prefix_table = PrefixTable()  # what each replica's prefix index holds, by chunk name
        self._by_bit: dict[int, ReplicaState] = {}  # replicas by their prefix index's bit in the table
        self._by_bit_of: list[ReplicaState] | None = None  # the replica list `_by_bit` was made from
        # The autoscaler's signal: in flight + queued, time-averaged (see loadmeter.py).
        self.meter = LoadMeter(time.monotonic())
        self._in_flight = 0
        # Requests waiting for a replica with room; only the queue itself changes it (activator.py).
        self.queue = ActivatorQueue(self, queue_settings or QueueSettings())
        self.requests_total = 0
        self.errors: dict[str, int] = {}  # error code -> requests this gateway failed or cut short
        # Requests and reported tokens by (gateway id, key id), and by gateway id counted on their own.
        self.key_usage: dict[tuple[str, str], Usage] = {}
        self.gateway_usage: dict[str, Usage] = {}
        self.usage_version = 0  # bumped by every change of the two above
        self._next_start = 0
        self.update(route)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @in_flight.setter
    def in_flight(self, value: int) -> None:
        self._in_flight = value
        self.load_changed()

    def load_changed(self) -> None:
        queued = len(self.queue)
        self.meter.set(time.monotonic(), self._in_flight + queued, queued)
        self._touched.add(self.deployment_id)

    def touch(self) -> None:
        """Something the load snapshot reports changed (requests, errors, usage, replicas)."""
        self._touched.add(self.deployment_id)

    def count_error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1
        self._touched.add(self.deployment_id)

    def update(self, route: DeploymentRoute) -> None:
        self.model_name = route.model_name
        self.weight = route.weight
        self.max_queue = route.max_queue
        self.max_queue_wait_s = route.max_queue_wait_s
        self.prefix_policy = PrefixAwarePolicy() if route.routing == PREFIX_AWARE else None
        self.failure = route.failure

    def replace_replicas(self, members: list[ReplicaState]) -> None:
        """The routing table's replicas for this deployment now: the prefix indexes of those that left are
        emptied and leave the table (memory stays bounded); one that comes back starts empty."""
        for replica in self.replicas:
            if all(replica is not member for member in members):
                replica.prefix_index.detach()
        for replica in members:
            if replica.prefix_index.table is not self.prefix_table:
                self.prefix_table.attach(replica.prefix_index)
        self.replicas = members

    def pick_replica(
        self, exclude: frozenset[str] | set[str] = frozenset(), prefix: tuple[int, ...] = ()
    ) -> ReplicaState | None:
        """Fewest in flight among replicas with room (or, prefix-aware, the policy's choice among them);
        healthy ones first. None when none has room. `prefix`: the request's chunk names (prompt_chunks)."""
        replicas = self.replicas
        count = len(replicas)
        if count == 1:  # the common case: no ordering to decide
            only = replicas[0]
            return only if only.has_room() and only.replica_id not in exclude else None
        if count == 0:
            return None
        policy = self.prefix_policy
        if prefix and policy is not None:
            # Prefix-aware. The common case is told here, without looking at every replica nor calling
            # further (each Python call costs about as much as hashing 200 bytes; this runs per request):
            # one replica holds some of the prompt and no other any of it. The policy takes it while its
            # load is within the slack for what it holds over the least loaded of all replicas (the least
            # loaded of those allowed is no less, so the policy's limit is no lower); else the full choice.
            get = self.prefix_table.holders.get
            holders = get(prefix[0], 0)
            if holders and not holders & (holders - 1):
                if self._by_bit_of is not replicas:
                    self._by_bit = {r.prefix_index.bit: r for r in replicas}
                    self._by_bit_of = replicas
                holder = self._by_bit.get(holders)
                if (
                    holder is not None
                    and holder.replica_id not in exclude
                    and (holder.max_concurrency is None or holder.in_flight < holder.max_concurrency)
                    and (not holder.unhealthy_until or holder.unhealthy_until <= time.monotonic())  # 0: never failed
                ):
                    load = holder.in_flight
                    index = holder.prefix_index
                    if get(prefix[-1], 0) & holders:  # it holds the whole prompt
                        # Within the rule's limit, `policy.whole_limits[least]` (ints: no float arithmetic);
                        # whole_limits[0] is within it whatever the least load is, so that needs no scan.
                        # (Comparisons in `if`s: CPython runs those on ints without making a bool.)
                        limits = policy.whole_limits
                        within = True
                        if load > limits[0]:
                            least = load
                            for replica in replicas:  # a loop: cheaper than min() for a few replicas
                                if replica.in_flight < least:
                                    least = replica.in_flight
                            try:
                                if load > limits[least]:
                                    within = False
                            except IndexError:  # beyond the table
                                within = load <= policy.limit(least, 2)
                        if within:  # PrefixIndex.insert's first case, without the call
                            holder.prefix_held = len(prefix)
                            index.requests += 1
                            waiting = index.touched
                            waiting.append(prefix)
                            if len(waiting) >= TOUCH_BATCH:
                                index.apply_touches()
                            return holder
                    else:
                        held = index.match(prefix)
                        reach = 1 + held / len(prefix)  # slacks ahead it may run
                        # Within `policy.limit(least, reach)`, i.e. least + max(slack_abs, slack_rel * least)
                        # * reach: slack_abs * reach is within it whatever the least load is.
                        within = load <= policy.slack_abs * reach
                        if not within:
                            least = min([replica.in_flight for replica in replicas])
                            within = load <= policy.limit(least, reach)
                        if within:
                            holder.prefix_held = held
                            index.insert(prefix, held)
                            return holder
            return self._pick_prefix_aware(policy, exclude, prefix)
        start = self._next_start % count
        self._next_start = start + 1
        now = time.monotonic()
        best: ReplicaState | None = None
        best_unhealthy: ReplicaState | None = None
        for offset in range(count):
            replica = replicas[(start + offset) % count]
            if not replica.has_room() or replica.replica_id in exclude:
                continue
            if replica.unhealthy_until <= now:
                if best is None or replica.in_flight < best.in_flight:
                    best = replica
            elif best_unhealthy is None or replica.in_flight < best_unhealthy.in_flight:
                best_unhealthy = replica
        return best if best is not None else best_unhealthy

    def _pick_prefix_aware(
        self, policy: PrefixAwarePolicy, exclude: frozenset[str] | set[str], prefix: tuple[int, ...]
    ) -> ReplicaState | None:
        """The policy's full choice among the replicas allowed (healthy ones first)."""
        now = time.monotonic()
        candidates = [
            r
            for r in self.replicas
            if r.unhealthy_until <= now
            and (r.max_concurrency is None or r.in_flight < r.max_concurrency)
            and r.replica_id not in exclude
        ]
        if not candidates:  # rare: only unhealthy ones have room
            candidates = [
                r
                for r in self.replicas
                if (r.max_concurrency is None or r.in_flight < r.max_concurrency) and r.replica_id not in exclude
            ]
            if not candidates:
                return None
        indexes = [r.prefix_index for r in candidates]
        position, held = policy.place_shared(self.prefix_table, [r.in_flight for r in candidates], indexes, prefix)
        indexes[position].insert(prefix, held)
        chosen = candidates[position]
        chosen.prefix_held = held
        return chosen


class ModelState:
    """Smooth weighted round-robin over the deployments in rotation for one model name."""

    def __init__(self, name: str, deployments: list[DeploymentState]) -> None:
        self.name = name
        self.deployments = deployments
        self._in_rotation = [d for d in deployments if d.weight > 0]
        self._current = [0] * len(self._in_rotation)
        self._total = sum(d.weight for d in self._in_rotation)

    def pick_deployment(self) -> DeploymentState | None:
        rotation = self._in_rotation
        if len(rotation) == 1:
            return rotation[0]
        if not rotation:
            return None
        current = self._current
        best = 0
        for i, deployment in enumerate(rotation):
            current[i] += deployment.weight
            if current[i] > current[best]:
                best = i
        current[best] -= self._total
        return rotation[best]
