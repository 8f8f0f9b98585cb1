"""The reconcile loop: desired state in the store -> replicas on the backend -> routes in the gateway.

It wakes on a store change (the API calls `wake()`), on a replica phase change (pushed by the backend),
and at least once a second. Every decision it applies comes from pure code (`lifecycle`, `autoscale`,
`scheduling`; `parking` which parked replicas to park, wake, keep or stop; `routing` the routes and each
gateway's view of them): this module reads the store and the backends, calls those and acts.
Work per tick is in proportion to what changed: it reads the store's change feed (`watch`), skips
deployments at rest (`rest`), and rebuilds only the routes of what changed (`route_cache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from tide.backends.base import Backend, ReplicaLaunch, ReplicaPhase, ReplicaState
from tide.config import DEFAULT_PARKED_MEMORY_FRACTION
from tide.control import parking
from tide.control.engine_load import EngineLoadScraper, ScrapeTarget, load_json, metrics_url, observed_concurrency
from tide.control.lifecycle import (
    Condition,
    DeploymentView,
    compute_state,
    plan_rollout,
    restart_backoff,
)
from tide.control.metrics import ControlMetrics
from tide.control.parking import parked_run_id
from tide.control.placement import (
    capacity_holders,
    free_gpu_ids,
    leaving_holders,
    placement_status,
    scheduled_placements,
    scheduling_requests,
)
from tide.control.rest import rest_key
from tide.control.route_cache import RouteCache
from tide.control.routing import deployment_route, gateway_zones, refreshed_views
from tide.control.runtime import DeploymentRuntime
from tide.control.scaling import DeploymentScaler, measured_cold_start
from tide.control.watch import StoreWatch
from tide.engines.adapter import adapter_for
from tide.engines.prometheus import EngineLoad
from tide.errors import FieldError
from tide.gateway.routes import DeploymentRoute, GatewayRoutes, RouteTable
from tide.scheduling import (
    Inventory,
    Placement,
    ScheduleResult,
    assign_claims,
    local_inventory,
    schedule,
)
from tide.scheduling.inventory_json import inventory_to_json
from tide.spec import Catalog, DeploymentSpec, parse_deployment
from tide.store import DeploymentRecord, Store
from tide.store.claims import ClaimStore, RunLog
from tide.store.gateways import GatewayRecord, GatewayStore, KeyLimits, KeyStore
from tide.store.published import INVENTORY_KEY, PublishedState
from tide.timing import (
    PUBLISH_INTERVAL_S,
    RECONCILE_INTERVAL_S,
    SAMPLE_INTERVAL_S,
    SCRAPE_INTERVAL_S,
    USAGE_PRUNE_INTERVAL_S,
)

# Looks at a spec's weights without fetching them: a message when they cannot be used, else None.
WeightsCheck = Callable[[DeploymentSpec], Awaitable[str | None]]

log = logging.getLogger("tide.control")

# Weights checks of scaled-to-zero deployments run at most this many at once: each holds a worker of the
# default thread pool, which the API's store reads share, and thousands of creates (an import, a restart)
# queue thousands of checks that must not make a user's GET wait behind them.
WEIGHTS_CHECKS_AT_ONCE = 2

# A reconcile writes the statuses it changed together at its end (Store.set_statuses: one statement, one
# commit), or every this many when it changes more (a catch-up of thousands of new deployments after a
# seed, an import or a restart), so no commit holds SQLite's write lock for long.
STATUS_WRITES_AT_ONCE = 512

# A reconcile woken between ticks waits until this many times the last one's duration has passed since it
# ended (at most WAKE_GAP_MAX_S). Each between-ticks reconcile has a fixed cost that grows with the number
# of deployments (the route push: the gateway finds the changed model names among all of them); during a
# burst of writes (a 10,000-create seed) it is then paid once per batch of creates, not once per create,
# and the API keeps most of the event loop. Only a write that lands right after a between-ticks reconcile
# waits, and at most the gap: a few ms at 100 deployments, tens at 10,000.
WAKE_GAP_FACTOR = 3.0
WAKE_GAP_MAX_S = 0.05


def wake_gap(last_took_s: float, since_end_s: float) -> float:
    """How long a wake-up between ticks waits before it reconciles (0: at once)."""
    return max(0.0, min(WAKE_GAP_FACTOR * last_took_s, WAKE_GAP_MAX_S) - since_end_s)


def resumed_scale(status: Mapping[str, Any], generation: int) -> int | None:
    """The replica count a previous controller last wanted for this generation of the spec (written in
    the deployment's status before it acted), or None when there is none to resume (a new deployment or
    a changed spec: those start at their initial scale). A restart then buys no GPU for a deployment
    that was scaled to zero."""
    desired = status.get("desiredReplicas")
    if status.get("observedGeneration") != generation or not isinstance(desired, int) or isinstance(desired, bool):
        return None
    return max(0, desired)


class RouteSink(Protocol):
    """The gateway as the controller sees it."""

    def set_routes(self, table: RouteTable) -> None: ...

    def in_flight(self, replica_id: str) -> int: ...

    def load_snapshot(self) -> Mapping[str, Any]: ...


class Controller:
    def __init__(
        self,
        store: Store,
        backend: Backend,
        gateway: RouteSink,
        catalog: Catalog,
        *,
        inventory: Callable[[], Inventory] | None = None,
        claims: ClaimStore | None = None,
        run_log: RunLog | None = None,
        clock: Callable[[], float] = time.time,
        drain_timeout_s: float = 30.0,
        stop_grace_s: float = 30.0,
        usage_retention_s: float | None = None,
        check_weights: WeightsCheck | None = None,
        parked_memory_fraction: float = DEFAULT_PARKED_MEMORY_FRACTION,
        gateway_token: str | None = None,
    ) -> None:
        self.store = store
        # coreWeaveAuth gateways accept the management API's token; only its SHA-256 travels to gateways.
        self.gateway_token_hash = hashlib.sha256(gateway_token.encode()).hexdigest() if gateway_token else None
        self.backend = backend
        self.gateway = gateway
        self.catalog = catalog
        self.clock = clock
        self.inventory = inventory or (lambda: local_inventory(None, 0))
        self.claims = claims
        self.run_log = run_log
        self.metrics = ControlMetrics()
        self.engine_load = EngineLoadScraper(clock)
        self.drain_timeout_s = drain_timeout_s
        self.stop_grace_s = stop_grace_s
        self.usage_retention_s = usage_retention_s  # None: keep every replica run (usage history) forever
        self.parked_memory_fraction = parked_memory_fraction  # of an instance's memory that parked replicas may hold
        self.runtimes: dict[str, DeploymentRuntime] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._weights_checks = asyncio.Semaphore(WEIGHTS_CHECKS_AT_ONCE)
        self._statuses: dict[str, dict[str, Any]] = {}  # deployment id -> its new status, not yet written
        self._last_routes: RouteTable | None = None
        self.watch = StoreWatch(store)
        self.routes = RouteCache()
        self._at_rest: dict[str, tuple[object, ...]] = {}  # deployment id -> its rest_key when last applied
        # At rest and their autoscaler resting too (ScalingCore.rest): not sampled, not ticked, until load,
        # a request, a replica or a change of their record arrives. What costs nothing per second at 10,000.
        self._resting: set[str] = set()
        self._gateways: list[GatewayRecord] = []  # gateway resources, read each reconcile
        self._key_grants: dict[str, dict[str, KeyLimits]] = {}  # their API keys: hash -> id and limits, likewise
        self._gateways_changed = False  # since the last push: the gateway view must be rebuilt
        self._view_models: set[str] = set()  # model names whose deployments' gatewayIds may have changed
        self._views: tuple[GatewayRoutes, ...] = ()  # the gateway view last pushed
        self._stopped = False
        self.check_weights = check_weights
        backend.set_listener(self._on_replica_change)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background; `close` waits for it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- wake-ups ------------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def on_demand(self, deployment_id: str) -> None:
        """A request waits in a gateway. With no ready replica: decide now, not at the next tick. Behind
        busy replicas: a policy that wakes for the queue (the `tide` profile, with parking) gets parked
        replicas woken at the next reconcile, now; otherwise nothing happens here (the tick sees the load)."""
        runtime = self.runtimes.get(deployment_id)
        self._resting.discard(deployment_id)
        if runtime is not None and runtime.scaler is not None:
            ready = runtime.ready_count()
            if ready > 0:
                if runtime.parked and runtime.scaler.wakes_for_queue():
                    runtime.queued_arrivals += 1
                    self.wake()
                return
            if runtime.woke_at is None:
                runtime.woke_at = self.clock()
            runtime.scaler.wake(self.clock(), ready, parking=parking.context(runtime))
        self.wake()

    def _on_replica_change(self, state: ReplicaState) -> None:
        runtime = self.runtimes.get(state.deployment_id)
        self._resting.discard(state.deployment_id)
        if runtime is not None:
            runtime.replicas[state.replica_id] = state
            if state.phase is ReplicaPhase.READY and ReplicaPhase.DRAINING.value not in state.phase_times:
                now = self.clock()
                if ReplicaPhase.PARKED.value not in state.phase_times:  # a wake is no start
                    self.metrics.replica_ready(state, now)
                if runtime.woke_at is not None:
                    self.metrics.woke_and_ready(runtime.id, now - runtime.woke_at)
                    runtime.woke_at = None
            if state.phase is ReplicaPhase.READY:
                runtime.consecutive_crashes = 0
                runtime.failure = None
                runtime.crash_message = None
                runtime.lost_message = None
                runtime.ever_ready_generation = runtime.record.generation
        self.routes.mark(state.deployment_id)
        # Readiness is pushed: the gateway learns of a ready (or gone) replica now, not at the next tick.
        self._push_routes()
        self.wake()

    # -- the loop -------------------------------------------------------------------------------------

    def sample_load(self) -> None:
        """Feed each deployment's load to its autoscaler: the gateways' in-flight + queued requests (summed
        over gateways) or, when larger, what its engines report running and waiting (see engine_load)."""
        now = self.clock()
        snapshot = self.gateway.load_snapshot()
        self.metrics.set_gateway_loads(snapshot)
        resting = self._resting
        for deployment_id, runtime in self.runtimes.items():
            if runtime.scaler is None:
                continue
            if deployment_id in resting:
                # No replica, so no load but requests waiting at zero, and each of those wakes it first
                # (on_demand); the core replays these seconds of zero load when it resumes.
                continue
            load = snapshot.get(deployment_id)
            # In flight + queued time-averaged over the last second, as the simulator records it.
            gateway = load.average if load is not None else 0.0
            queued = load.queued_avg if load is not None else 0.0
            if not runtime.replicas and not gateway and not queued:
                continue  # no replica and no request: no data, as in the simulator (ScalingCore.record)
            engine = list(self._engine_loads(runtime, now).values())
            arrived = self._arrivals(runtime, load.requests_total if load is not None else None)
            runtime.scaler.record(now, observed_concurrency(gateway, engine), arrived, queued)

    @staticmethod
    def _arrivals(runtime: DeploymentRuntime, total: int | None) -> int:
        """Requests routed to the deployment since it was last fed: the growth of the gateways' counter (a
        restarted gateway's counter starts again from 0: the second it drops counts none)."""
        if total is None:
            return 0
        seen, runtime.requests_seen = runtime.requests_seen, total
        return max(0, total - seen) if seen is not None else 0

    def _engine_loads(self, runtime: DeploymentRuntime, now: float) -> dict[str, EngineLoad]:
        """The fresh engine readings of this deployment's ready, serving replicas."""
        loads = {}
        for replica_id, state in runtime.replicas.items():
            if state.phase is ReplicaPhase.READY and replica_id not in runtime.draining:
                load = self.engine_load.fresh(replica_id, now)
                if load is not None:
                    loads[replica_id] = load
        return loads

    def _scrape_targets(self) -> list[ScrapeTarget]:
        targets = []
        for runtime in self.runtimes.values():
            spec = runtime.spec
            if not runtime.replicas or spec is None or not self._manages_replicas(spec):
                continue  # (nothing to scrape at zero: the common case at scale)
            try:
                adapter = adapter_for(spec.runtime.engine)
            except KeyError:
                continue
            for replica_id, state in runtime.replicas.items():
                if state.phase is ReplicaPhase.READY and state.base_url and replica_id not in runtime.draining:
                    targets.append(
                        ScrapeTarget(
                            replica_id=replica_id,
                            deployment_id=runtime.id,
                            metrics_url=metrics_url(state.base_url, adapter.metrics_path),
                            names=adapter.load_metrics,
                            served_name=spec.routing_name,
                        )
                    )
        return targets

    async def _scrape_loop(self) -> None:
        while not self._stopped:
            try:
                await self.engine_load.scrape(self._scrape_targets())
                self.metrics.set_engine_loads(self.engine_load.readings)
            except Exception:
                log.exception("engine load scraping failed")
            await asyncio.sleep(SCRAPE_INTERVAL_S)

    async def _sample_loop(self) -> None:
        while not self._stopped:
            try:
                self.sample_load()
            except Exception:
                log.exception("load sampling failed")
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    def inventory_document(self) -> dict[str, Any]:
        """What `tide api` processes need to validate and answer as this controller would."""
        vllm = self.catalog.engine("vllm")
        return {
            "inventory": inventory_to_json(self.inventory()),
            "vllmVersions": list(vllm.versions) if vllm is not None else [],
        }

    async def _publish_inventory_loop(self, published: PublishedState) -> None:
        """Publish the inventory when it changes (a Ray node joins or leaves), and once at the start."""
        last: dict[str, Any] | None = None
        while not self._stopped:
            try:
                document = self.inventory_document()
                if document != last:
                    await asyncio.to_thread(published.write, INVENTORY_KEY, document, self.clock())
                    last = document
            except Exception:
                log.exception("publishing the inventory failed")
            await asyncio.sleep(PUBLISH_INTERVAL_S)

    async def _prune_usage_loop(self, run_log: RunLog, retention_s: float) -> None:
        """At start and hourly: forget replica runs that ended more than `retention_s` ago."""
        while not self._stopped:
            try:
                deleted = await asyncio.to_thread(run_log.prune, self.clock() - retention_s)
                if deleted:
                    log.info("usage retention: deleted %d replica runs that ended over %gs ago", deleted, retention_s)
            except Exception:
                log.exception("usage retention: pruning replica runs failed")
            await asyncio.sleep(USAGE_PRUNE_INTERVAL_S)

    async def run(self) -> None:
        if self.run_log is not None:  # runs a crash left open end at the restart: no billing while down
            await asyncio.to_thread(self.run_log.close_all_open, self.clock())
        loops = [
            asyncio.create_task(self._sample_loop()),
            asyncio.create_task(self._scrape_loop()),
            asyncio.create_task(self._publish_inventory_loop(PublishedState(self.store))),
        ]
        if self.run_log is not None and self.usage_retention_s is not None:
            loops.append(asyncio.create_task(self._prune_usage_loop(self.run_log, self.usage_retention_s)))
        try:
            await self._run_reconcile()
        finally:
            for loop in loops:
                loop.cancel()

    async def _run_reconcile(self) -> None:
        # Every deployment once a second; woken in between (a write, a replica event, a request at zero),
        # only what changed and what is running, so a PATCH does not wait for 10,000 autoscalers.
        next_full = 0.0
        while not self._stopped:
            full = time.monotonic() >= next_full
            started = time.monotonic()
            try:
                await self.reconcile(full=full)
            except Exception:
                log.exception("reconcile failed; retrying")
            ended = time.monotonic()
            if full:  # a second from the end of the tick: a slow tick never runs back to back
                next_full = ended + RECONCILE_INTERVAL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_full - time.monotonic()))
            # Only a between-ticks reconcile sets the gap: bursts of writes run those back to back, while a
            # PATCH on an idle control plane comes after a full tick and goes at once.
            gap = 0.0 if full else wake_gap(ended - started, time.monotonic() - ended)
            if gap > 0 and not self._stopped:  # what lands meanwhile joins this reconcile
                await asyncio.sleep(min(gap, max(0.0, next_full - time.monotonic())))
            self._wake.clear()

    @staticmethod
    def _busy(runtime: DeploymentRuntime) -> bool:
        """Anything running, placed, leaving or wanted: what a between-ticks reconcile must still look at."""
        return bool(
            runtime.replicas
            or runtime.placements
            or runtime.draining
            or runtime.awaiting_gpus
            or runtime.record.deleting
            or runtime.spec is None
            or (runtime.scaler is not None and runtime.scaler.current > 0)
        )

    async def reconcile(self, full: bool = True) -> None:
        """`full`: every deployment (the once-a-second tick); else the changed and the busy ones."""
        delta = await asyncio.to_thread(self.watch.read, self.clock())
        if delta.gateways_changed:  # gateway resources and keys: read only when the feed says they changed
            gateways = await asyncio.to_thread(GatewayStore(self.store.engine).list_gateways)
            key_grants = await asyncio.to_thread(KeyStore(self.store.engine).key_grants)
            if gateways != self._gateways or key_grants != self._key_grants:
                self._gateways, self._key_grants = gateways, key_grants
                self._gateways_changed = True
        now = self.clock()
        seen = set()  # in the store now (every deployment on a full read)
        changed = set()  # of those, the ones whose record changed since it was last read
        for record in delta.records:
            seen.add(record.id)
            runtime = self.runtimes.get(record.id)
            if runtime is not None and delta.full and not record_changed(runtime.record, record):
                continue  # a resync finds what the feed said already: nothing to redo
            changed.add(record.id)
            self._resting.discard(record.id)
            self.routes.mark(record.id)
            if runtime is None:
                runtime = self.runtimes[record.id] = DeploymentRuntime(id=record.id, record=record)
                self._parse(runtime)
            elif record.generation != runtime.record.generation or record.spec != runtime.record.spec:
                runtime.record = record
                self._parse(runtime)
                runtime.failure = None
                runtime.consecutive_crashes = 0
                runtime.next_start_at = 0.0
            runtime.record = record
            self._check_idle_weights(runtime)
        for deployment_id in changed:  # a spec change may move a deployment between gateways
            name = self.routes.model_of(deployment_id)
            if name is not None:
                self._view_models.add(name)
        for runtime in self.runtimes.values():
            if runtime.replicas:
                self._collect_exits(runtime, now)
                self.routes.mark(runtime.id)
        gone = set(self.runtimes) - seen if delta.full else delta.gone & set(self.runtimes)
        if delta.present is not None:  # a resync: what is no longer in the store is gone
            gone |= set(self.runtimes) - delta.present
        for deployment_id in gone:
            runtime = self.runtimes.pop(deployment_id)
            self.routes.mark(deployment_id)
            self._statuses.pop(deployment_id, None)
            self._at_rest.pop(deployment_id, None)
            self._resting.discard(deployment_id)
            for replica_id in list(runtime.replicas):
                self._remove_replica(runtime, replica_id)

        # A changed spec's route goes out now, not after the status writes and the autoscalers below (a
        # PATCH of an endpoint or weight reaches the gateways without waiting for a commit).
        self._push_routes()

        # Phase 1: what each deployment wants. Phase 2: one scheduling decision for all of them, so
        # priority decides who gets GPUs under contention. Phase 3: apply, per deployment.
        wants: dict[str, int] = {}
        asleep = self._resting  # never busy, never changed (a change wakes it above): one set lookup each
        runtimes = [
            r for r in self.runtimes.values() if r.id not in asleep and (full or r.id in changed or self._busy(r))
        ]
        for i, runtime in enumerate(runtimes):
            if i % 512 == 511:
                await asyncio.sleep(0)  # a long tick must not hold up the API and gateway on this loop
            if runtime.record.deleting:
                await self._reconcile_deleting(runtime, now)
            elif runtime.spec is None:
                await self._write_status(runtime, now, desired=0)
            else:
                wants[runtime.id] = self._wanted(runtime, now)
        # A deployment wanting 0 with nothing placed asks the scheduler for nothing.
        active = {d: n for d, n in wants.items() if n or self.runtimes[d].placements}
        # Nothing to place (a create or edit at zero between ticks): no claims read, no walk over placements.
        decision = await self._schedule(active, now) if active else ScheduleResult.nothing(now)
        for deployment_id, desired in wants.items():
            runtime = self.runtimes[deployment_id]
            resting = rest_key(runtime, desired)
            if resting is not None and self._at_rest.get(deployment_id) == resting:
                self._rest(runtime, now)
                continue  # at rest, and its status already says so
            await self._apply(runtime, desired, decision, now)
            resting = rest_key(runtime, desired)
            if resting is None:
                self._at_rest.pop(deployment_id, None)
            else:
                self._at_rest[deployment_id] = resting
                self._rest(runtime, now)
        self._push_routes()
        await self._flush_statuses()

    def _rest(self, runtime: DeploymentRuntime, now: float) -> None:
        """A deployment at rest whose autoscaler can rest too stops being sampled and ticked."""
        scaler, spec = runtime.scaler, runtime.spec
        if runtime.id in self._resting or scaler is None or spec is None or runtime.parked:
            return
        if scaler.rest(now, reachable=spec.traffic.weight > 0):
            self._resting.add(runtime.id)

    def _parse(self, runtime: DeploymentRuntime) -> None:
        try:
            runtime.spec = parse_deployment(runtime.record.spec, self.catalog)
            runtime.spec_error = None
        except FieldError as exc:
            runtime.spec_error = str(exc)
            return
        spec = runtime.spec
        if runtime.scaler is None:
            runtime.scaler = DeploymentScaler(spec, self.clock())
            resumed = resumed_scale(runtime.record.status, runtime.record.generation)
            if resumed is not None:
                runtime.scaler.resume(resumed)
        else:
            runtime.scaler.update_spec(spec, self.clock())

    def _check_idle_weights(self, runtime: DeploymentRuntime) -> None:
        """A deployment with no replica (scaled to zero) would show READY until a request found its
        weights missing: look once per generation, in the background, and record a failure now."""
        spec = runtime.spec
        generation = runtime.record.generation
        if (
            self.check_weights is None
            or spec is None
            or spec.weights is None
            or runtime.replicas
            or runtime.weights_checked_generation == generation
            or not self._manages_replicas(spec)
        ):
            return
        runtime.weights_checked_generation = generation
        check = self.check_weights

        async def run() -> None:
            async with self._weights_checks:
                problem = await check(spec)
            if problem and runtime.record.generation == generation and not runtime.replicas and not runtime.failure:
                runtime.failure = problem
                self._resting.discard(runtime.id)  # its status must say so
                # Pushed by the reconcile this wakes: after a restart thousands of checks end together,
                # and one push for all of them costs what one push costs.
                self.routes.mark(runtime.id)
                self.wake()

        self._spawn(run())

    def _collect_exits(self, runtime: DeploymentRuntime, now: float) -> None:
        """Replicas that ended on their own: record why, forget them, back off before replacing (not when
        their machine was lost: that is no reason to wait)."""
        for replica_id, state in list(runtime.replicas.items()):
            if replica_id in runtime.parked and state.phase.terminal:  # a parked engine that ended: nobody lost work
                self._forget_parked(runtime, replica_id)
                self.backend.forget(replica_id)
            elif state.phase is ReplicaPhase.LOST and replica_id not in runtime.draining:
                runtime.lost_message = f"replica {replica_id} lost: {state.message}; replacing it"
                del runtime.replicas[replica_id]
                self._release_placement(runtime, replica_id, now)
                self.backend.forget(replica_id)
            elif state.phase in (ReplicaPhase.CRASHED, ReplicaPhase.FAILED) and replica_id not in runtime.draining:
                if state.phase is ReplicaPhase.FAILED:
                    runtime.failure = state.message
                runtime.consecutive_crashes += 1
                runtime.crash_message = (
                    f"replica {replica_id} {'failed' if state.phase is ReplicaPhase.FAILED else 'crashed'}: "
                    f"{state.message} (attempt {runtime.consecutive_crashes}; next try in "
                    f"{restart_backoff(runtime.consecutive_crashes):.0f}s)"
                )
                runtime.next_start_at = now + restart_backoff(runtime.consecutive_crashes)
                del runtime.replicas[replica_id]
                self._release_placement(runtime, replica_id, now)
                self.backend.forget(replica_id)
            elif state.phase is ReplicaPhase.STOPPED:
                runtime.replicas.pop(replica_id, None)
                runtime.draining.discard(replica_id)
                self._release_placement(runtime, replica_id, now)

    async def _reconcile_deleting(self, runtime: DeploymentRuntime, now: float) -> None:
        for replica_id in list(runtime.replicas):
            self._remove_replica(runtime, replica_id)
        if not runtime.replicas:
            await asyncio.to_thread(self.store.remove_deployment, runtime.id)
            self.runtimes.pop(runtime.id, None)
            self._statuses.pop(runtime.id, None)
            self.routes.mark(runtime.id)
            self._at_rest.pop(runtime.id, None)
            self._resting.discard(runtime.id)
            self.metrics.forget(runtime.id)
            return
        await self._write_status(runtime, now, desired=0)

    def _manages_replicas(self, spec: DeploymentSpec) -> bool:
        return self.catalog.engines[spec.runtime.engine].manages_replicas

    def _wanted(self, runtime: DeploymentRuntime, now: float) -> int:
        spec = runtime.spec
        assert spec is not None
        if spec.disabled or not self._manages_replicas(spec):
            return 0
        return self._desired(runtime, now)

    async def _schedule(self, wants: dict[str, int], now: float) -> ScheduleResult:
        inventory = self.inventory()
        if self.claims is not None:
            inventory = assign_claims(await asyncio.to_thread(self.claims.claims), inventory)
        specs = {
            deployment_id: spec
            for deployment_id in wants
            if (spec := self.runtimes[deployment_id].spec) is not None and self._manages_replicas(spec)
        }
        managed = {deployment_id: wants[deployment_id] for deployment_id in specs}
        zones = gateway_zones(self._gateways, specs, managed)
        return schedule(
            inventory,
            scheduled_placements(self.runtimes.values()),
            scheduling_requests(self.runtimes, managed, now, zones),
            now,
        )

    async def _apply(self, runtime: DeploymentRuntime, desired: int, decision: ScheduleResult, now: float) -> None:
        spec = runtime.spec
        assert spec is not None
        if self._manages_replicas(spec):
            for preemption in decision.preempted:
                if preemption.placement.deployment_id == runtime.id:
                    log.info("preempting %s: %s", preemption.placement.replica_id, preemption.message)
                    self._remove_replica(runtime, preemption.placement.replica_id)
            pending = decision.pending_for(runtime.id)
            runtime.pending_message = pending.message if pending is not None and pending.count else None
            if runtime.pending_message:
                holders = capacity_holders(self.runtimes.values(), spec.resources.instance_type, runtime.id)
                runtime.pending_message += f"; {holders}" if holders else ""
            slots = [p for p in decision.started if p.deployment_id == runtime.id]
            in_flight = {rid: self.gateway.in_flight(rid) for rid in runtime.replicas}
            plan = plan_rollout(
                [r for rid, r in runtime.replicas.items() if rid not in runtime.draining and rid not in runtime.parked],
                spec.replica_template(),
                desired,
                in_flight,
                can_start=now >= runtime.next_start_at,
            )
            for replica_id in plan.remove:
                if parking.may_park(runtime, replica_id):
                    self._park_replica(runtime, replica_id)
                else:
                    self._remove_replica(runtime, replica_id)
            await self._start_awaiting(runtime, now)
            for slot in self._wake_parked(runtime, slots[: plan.start], now):
                await self._start_replica(runtime, spec, slot, now)
            keep = runtime.scaler.take_keep_parked() if runtime.scaler is not None else None
            free = (
                self.inventory().free_gpus(p for r in self.runtimes.values() for p in r.placements.values())
                if runtime.parked
                else {}
            )
            for replica_id, why in parking.retention_stops(runtime, now, keep, free):
                log.info("stopping parked %s: %s", replica_id, why)
                self._remove_replica(runtime, replica_id)
        await self._write_status(runtime, now, desired=desired)

    def _desired(self, runtime: DeploymentRuntime, now: float) -> int:
        assert runtime.scaler is not None and runtime.spec is not None
        reachable = runtime.spec.traffic.weight > 0
        replicas = runtime.replicas.values()
        desired = runtime.scaler.desired(
            now,
            runtime.ready_count(),
            reachable=reachable,
            starting=sum(1 for r in replicas if r.phase.starting),
            cold_start_s=measured_cold_start(replicas),
            parking=parking.context(runtime),
        )
        # Requests queued behind busy replicas since the last decision wake parked ones now.
        queued, runtime.queued_arrivals = runtime.queued_arrivals, 0
        return parking.queue_wake_target(runtime, desired, queued)

    async def _start_replica(
        self, runtime: DeploymentRuntime, spec: DeploymentSpec, slot: Placement, now: float
    ) -> None:
        replica_id = f"{runtime.id}-{secrets.token_hex(3)}"
        runtime.placements[replica_id] = Placement(runtime.id, replica_id, slot.instance_id, slot.gpus, now)
        holders = leaving_holders(self.runtimes.values(), replica_id, self.inventory())
        if holders:
            runtime.awaiting_gpus.add(replica_id)
            runtime.replicas[replica_id] = ReplicaState(
                deployment_id=runtime.id,
                replica_id=replica_id,
                template=spec.replica_template(),
                message=f"waiting for {', '.join(holders)} to stop and free {slot.instance_id}",
                phase_times={ReplicaPhase.WAITING_FOR_CAPACITY.value: now},
            )
            return
        await self._launch(runtime, spec, replica_id, now)

    async def _start_awaiting(self, runtime: DeploymentRuntime, now: float) -> None:
        """Start the replicas whose GPUs the leaving replicas have now given back."""
        spec = runtime.spec
        for replica_id in sorted(runtime.awaiting_gpus):
            if spec is not None and not leaving_holders(self.runtimes.values(), replica_id, self.inventory()):
                runtime.awaiting_gpus.discard(replica_id)
                await self._launch(runtime, spec, replica_id, now)

    async def _launch(self, runtime: DeploymentRuntime, spec: DeploymentSpec, replica_id: str, now: float) -> None:
        placement = runtime.placements[replica_id]
        gpu_ids = free_gpu_ids(self.runtimes.values(), placement)
        runtime.gpu_ids[replica_id] = gpu_ids
        # A parked replica on these GPUs gave them back to the books: stop it before another engine starts.
        for owner, parked_id in parking.overlapping_parked(self.runtimes.values(), placement.instance_id, gpu_ids):
            log.info("stopping parked %s: its GPUs go to %s", parked_id, replica_id)
            await self.backend.stop(parked_id, grace_s=self.stop_grace_s)
            self._forget_parked(owner, parked_id)
        if self.run_log is not None:  # billing starts when the replica's process does
            await asyncio.to_thread(
                self.run_log.run_started, runtime.id, replica_id, placement.gpus, placement.instance_id, now
            )
        state = await self.backend.start(
            ReplicaLaunch(
                deployment_id=runtime.id,
                replica_id=replica_id,
                spec=spec,
                gpu_ids=gpu_ids,
                instance_id=placement.instance_id,
            )
        )
        runtime.replicas[replica_id] = state

    def _release_placement(self, runtime: DeploymentRuntime, replica_id: str, now: float) -> None:
        runtime.gpu_ids.pop(replica_id, None)
        if runtime.placements.pop(replica_id, None) is not None and self.run_log is not None:
            self.run_log.run_stopped(replica_id, now)

    def _remove_replica(self, runtime: DeploymentRuntime, replica_id: str) -> None:
        """Drain: out of rotation first, in-flight requests finish (bounded), then the process stops."""
        if replica_id in runtime.awaiting_gpus:  # never started: nothing to drain or stop
            runtime.awaiting_gpus.discard(replica_id)
            runtime.replicas.pop(replica_id, None)
            self._release_placement(runtime, replica_id, self.clock())
            self.wake()
            return
        if replica_id in runtime.draining:
            return
        runtime.draining.add(replica_id)
        self.routes.mark(runtime.id)
        self._push_routes()
        self._spawn(self._drain_and_stop(runtime, replica_id))

    async def _drain_and_stop(self, runtime: DeploymentRuntime, replica_id: str) -> None:
        deadline = self.clock() + self.drain_timeout_s
        while self.gateway.in_flight(replica_id) > 0 and self.clock() < deadline:
            await asyncio.sleep(0.05)
        try:
            await self.backend.stop(replica_id, grace_s=self.stop_grace_s)
        finally:
            runtime.replicas.pop(replica_id, None)
            runtime.draining.discard(replica_id)
            if runtime.parked.pop(replica_id, None) is not None:
                self._end_parked_run(replica_id, self.clock())
            self._release_placement(runtime, replica_id, self.clock())
            self.routes.mark(runtime.id)
            self.wake()

    # -- parking (tide.control.parking) ----------------------------------------------------------------

    def _park_replica(self, runtime: DeploymentRuntime, replica_id: str) -> None:
        """Out of rotation first (like a drain); once its in-flight requests are done, park it; its GPUs
        go back to the books. An engine that cannot park is stopped."""
        runtime.draining.add(replica_id)
        self._push_routes()
        self._spawn(self._drain_and_park(runtime, replica_id))

    async def _drain_and_park(self, runtime: DeploymentRuntime, replica_id: str) -> None:
        assert runtime.spec is not None
        level = runtime.spec.autoscaling.parking.level
        deadline = self.clock() + self.drain_timeout_s
        while self.gateway.in_flight(replica_id) > 0 and self.clock() < deadline:
            await asyncio.sleep(0.05)
        if not await self.backend.park(replica_id, level):
            await self._drain_and_stop(runtime, replica_id)
            return
        now = self.clock()
        state = runtime.replicas.get(replica_id)
        runtime.parked[replica_id] = parking.parked_at(
            runtime.placements.get(replica_id),
            runtime.gpu_ids.get(replica_id, ()),
            state.host_bytes if state is not None else 0,
            now,
        )
        runtime.draining.discard(replica_id)
        self._release_placement(runtime, replica_id, now)
        if self.run_log is not None:  # parked time is metered apart: a run on no GPU (tide usage shows it)
            await asyncio.to_thread(
                self.run_log.run_started,
                runtime.id,
                parked_run_id(replica_id),
                0,
                runtime.parked[replica_id].instance_id,
                now,
            )
        self.metrics.parked(runtime.id)
        self._evict_parked_over_memory()
        self.wake()

    def _evict_parked_over_memory(self) -> None:
        limits = parking.memory_limits(self.inventory(), self.parked_memory_fraction)
        for owner, replica_id in parking.over_host_memory(self.runtimes.values(), limits):
            log.info("stopping parked %s: parked replicas on its instance are over their host-memory bound", replica_id)
            self._remove_replica(owner, replica_id)

    def _wake_parked(self, runtime: DeploymentRuntime, slots: list[Placement], now: float) -> list[Placement]:
        """Wake parked replicas into the slots the scheduler offers on their own instances; returns the
        slots left for new replicas. One whose GPUs another replica took is stopped (a new one starts)."""
        plan = parking.plan_wakes(runtime, slots, self.runtimes.values())
        for replica_id in plan.stop:
            self._remove_replica(runtime, replica_id)
        for replica_id, slot in plan.wake:
            at = runtime.parked.pop(replica_id)
            runtime.placements[replica_id] = Placement(runtime.id, replica_id, slot.instance_id, slot.gpus, now)
            runtime.gpu_ids[replica_id] = at.gpu_ids
            self._spawn(self._wake_one(runtime, replica_id, slot, now))
        return list(plan.remaining)

    async def _wake_one(self, runtime: DeploymentRuntime, replica_id: str, slot: Placement, now: float) -> None:
        if self.run_log is not None:  # GPU time is billed again from the wake, parked time no longer
            await asyncio.to_thread(self.run_log.run_stopped, parked_run_id(replica_id), now)
            await asyncio.to_thread(self.run_log.run_started, runtime.id, replica_id, slot.gpus, slot.instance_id, now)
        started = self.clock()
        if await self.backend.wake(replica_id):
            self.metrics.woke(runtime.id, self.clock() - started)
        else:
            log.warning("replica %s could not wake; stopping it", replica_id)
            self._remove_replica(runtime, replica_id)
        self.wake()

    def _forget_parked(self, runtime: DeploymentRuntime, replica_id: str) -> None:
        if runtime.parked.pop(replica_id, None) is not None:
            self._end_parked_run(replica_id, self.clock())
        runtime.replicas.pop(replica_id, None)

    def _end_parked_run(self, replica_id: str, now: float) -> None:
        if self.run_log is not None:
            self.run_log.run_stopped(parked_run_id(replica_id), now)

    # -- routes and status ----------------------------------------------------------------------------

    def _creation_order(self, deployment_id: str) -> tuple[float, str]:
        """Routes of one model name in the order their deployments were created (one gone: last)."""
        runtime = self.runtimes.get(deployment_id)
        return (runtime.record.created_at if runtime is not None else math.inf, deployment_id)

    def _route_of(self, deployment_id: str) -> DeploymentRoute | None:
        runtime = self.runtimes.get(deployment_id)
        if runtime is None or runtime.spec is None:
            return None
        return deployment_route(runtime, self._manages_replicas(runtime.spec))

    def _push_routes(self) -> None:
        """Push the routes when a deployment's route or a gateway resource changed (the route cache
        rebuilds only what was marked; the gateway view follows the routes)."""
        table = self.routes.update(self._route_of, self._creation_order)
        names = self._view_models | self.routes.changed_models
        if table is None and not self._gateways_changed and not names:
            return
        routes = self.routes.table.routes
        self._views = refreshed_views(
            self._views,
            self.runtimes,
            routes,
            gateways_changed=self._gateways_changed,
            names=names,
            gateways=self._gateways,
            key_grants=self._key_grants,
            token_hash=self.gateway_token_hash,
        )
        self._gateways_changed = False
        self._view_models.clear()
        self.routes.changed_models.clear()
        full = RouteTable(routes=routes, gateways=self._views)
        if full != self._last_routes:
            self._last_routes = full
            self.gateway.set_routes(full)

    async def _write_status(self, runtime: DeploymentRuntime, now: float, desired: int) -> None:
        spec = runtime.spec
        replicas = list(runtime.replicas.values())
        view = DeploymentView(
            deleting=runtime.record.deleting,
            disabled=bool(spec and spec.disabled),
            external=bool(spec and not self.catalog.engines[spec.runtime.engine].manages_replicas),
            desired=desired,
            template=spec.replica_template() if spec else (),
            replicas=[r for r in replicas if r.replica_id not in runtime.draining],
            failure=runtime.failure,
            crash_message=runtime.crash_message,
            consecutive_crashes=runtime.consecutive_crashes,
            ever_ready_this_generation=runtime.ever_ready_generation == runtime.record.generation,
            spec_error=runtime.spec_error,
            waiting_for_capacity=runtime.pending_message,
            lost_message=runtime.lost_message,
        )
        state, conditions = compute_state(view)
        ready = sum(1 for r in replicas if r.phase is ReplicaPhase.READY and r.replica_id not in runtime.draining)
        engine_loads = self._engine_loads(runtime, now)
        inventory = self.inventory() if replicas else None
        status: dict[str, Any] = {
            "state": state,
            "conditions": [self._condition(runtime, c, now) for c in conditions],
            "readyReplicas": ready,
            "desiredReplicas": desired,
            "replicas": [
                {
                    **r.to_status(),
                    **(placement_status(runtime, r.replica_id, inventory) if inventory is not None else {}),
                    **({"draining": True} if r.replica_id in runtime.draining else {}),
                    **({"load": load_json([engine_loads[r.replica_id]])} if r.replica_id in engine_loads else {}),
                }
                for r in sorted(replicas, key=lambda r: r.replica_id)
            ],
            "observedGeneration": runtime.record.generation,
        }
        if engine_loads:
            status["engineLoad"] = load_json(list(engine_loads.values()))
        if runtime.scaler is not None:
            status.update(runtime.scaler.status())
        self.metrics.set_replica_counts(runtime.id, ready, desired, parked=len(runtime.parked))
        status["parkedReplicas"] = len(runtime.parked)
        if status != runtime.last_status:
            runtime.last_status = status
            self._statuses[runtime.id] = status
            if len(self._statuses) >= STATUS_WRITES_AT_ONCE:
                await self._flush_statuses()

    async def _flush_statuses(self) -> None:
        """Write the statuses changed since the last flush: one statement, one commit and one thread hop
        for all of them, so the API's writes wait behind a few commits, not one per deployment. What a
        failed write leaves is written by the next flush (a newer status of the same deployment wins)."""
        statuses, self._statuses = self._statuses, {}
        if not statuses:
            return
        try:
            await asyncio.to_thread(self.store.set_statuses, statuses)
        except BaseException:
            self._statuses = {**statuses, **self._statuses}
            raise

    def _condition(self, runtime: DeploymentRuntime, condition: Condition, now: float) -> dict[str, Any]:
        # lastTransitionTime stays put while the same condition holds, so status does not churn.
        key = (condition.type, condition.message)
        first_seen = runtime.condition_times.setdefault(key, now)
        return condition.to_dict(first_seen)

    # -- shutdown -------------------------------------------------------------------------------------

    async def close(self) -> None:
        self._stopped = True
        self.wake()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.engine_load.close()
        await self.backend.close()


def record_changed(old: DeploymentRecord, new: DeploymentRecord) -> bool:
    """Whether a deployment's desired state differs between two reads (its status is the controller's own)."""
    return (
        old.generation != new.generation
        or old.updated_at != new.updated_at
        or old.deleting != new.deleting
        or old.spec != new.spec
    )
