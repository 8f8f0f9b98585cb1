"""`tide up`: the embedded default. API, gateway and controller on one event loop, SQLite, local backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from tide import __version__
from tide.api.app import ApiContext, create_app
from tide.api.claims import ClaimsContext
from tide.api.parameters import parameters_json
from tide.api.protocol import uvicorn_options
from tide.api.published_view import PublishedView
from tide.backends.base import Backend
from tide.backends.local import LocalBackend
from tide.backends.logfiles import LogText
from tide.backends.node_weights import CachedWeights
from tide.backends.ray import RayOptions
from tide.backends.warm_pool import WarmPoolMetrics, WarmPools
from tide.config import ServerConfig, load_or_create_token, prepare_data_dir
from tide.control.channel_http import GatewayHub
from tide.control.controller import Controller, WeightsCheck
from tide.control.metrics import usage_json
from tide.control.retention import sweep_logs
from tide.engines.vllm import installed_vllm_versions
from tide.errors import FieldError
from tide.gateway import Gateway
from tide.gateway.keys import GatewayKeys
from tide.gc_pauses import freeze_after_full_collections
from tide.scheduling import Inventory, declared_inventory, local_inventory
from tide.spec import Catalog, DeploymentSpec, InstanceTypeInfo, default_catalog
from tide.store import Store
from tide.store.claims import ClaimStore, RunLog
from tide.store.lease import LeaderLease
from tide.store.published import PublishedState
from tide.timing import HOUSEKEEPING_INTERVAL_S, LEASE_TTL_S
from tide.weights import StorageConfig, WeightsCache, WeightsError, WeightsSource
from tide.weights.errors import ACCESS_DENIED, BUCKET_NOT_FOUND, MISSING_FILE, PATH_NOT_FOUND

log = logging.getLogger("tide.server")


def node_inventory(declared_path: Path | None, cpu_slots: int) -> Inventory:
    """A declared fleet of virtual instances (tests, demos, planning), or this machine as it is."""
    if declared_path is not None:
        try:
            return declared_inventory(yaml.safe_load(declared_path.read_text()))
        except FieldError as exc:
            raise SystemExit(f"inventory {declared_path}: {exc}") from None
    gpus = _gpu_count()
    return local_inventory("local-gpu" if gpus else None, gpus, cpu_slots=cpu_slots, memory_gib=_memory_gib())


def weights_checker(storage: StorageConfig, cache: WeightsCache) -> WeightsCheck:
    """The controller's look at a scaled-to-zero deployment's weights: a missing bucket, path or
    config.json is a failure to show now; storage that cannot be reached says nothing (a start retries)."""

    async def check(spec: DeploymentSpec) -> str | None:
        assert spec.weights is not None
        source = WeightsSource(
            spec.weights.bucket, spec.weights.path, spec.weights.allow_patterns, spec.weights.ignore_patterns
        )
        try:
            await asyncio.to_thread(cache.check, storage, source)
        except WeightsError as exc:
            if exc.code in (BUCKET_NOT_FOUND, PATH_NOT_FOUND, MISSING_FILE, ACCESS_DENIED):
                return str(exc)
        except Exception:  # a network error: not a verdict on the spec
            log.debug("weights check of %s/%s failed", spec.weights.bucket, spec.weights.path, exc_info=True)
        return None

    return check


def catalog_from_inventory(inventory: Inventory, vllm_versions: tuple[str, ...] | None = None) -> Catalog:
    """The catalog for `inventory`; vLLM versions as given (a published inventory's) or found installed here."""
    zones = inventory.zone_instance_types()
    types = tuple(
        InstanceTypeInfo(
            id=t.id,
            gpu_model=t.gpu_model,
            gpus=t.gpus,
            memory_gib=t.memory_gib,
            cpus=t.cpus,
            zones=tuple(zone for zone, ids in sorted(zones.items()) if t.id in ids),
        )
        for t in inventory.types
    )
    versions = installed_vllm_versions() if vllm_versions is None else vllm_versions
    return default_catalog(builtin_version=__version__, vllm_versions=versions, instance_types=types)


def _memory_gib() -> int:
    """This machine's physical memory (bounds what parked replicas may hold); 0 where it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30)
    except (ValueError, OSError, AttributeError):
        return 0


def _gpu_count() -> int:
    # nvidia-smi rather than importing torch: keeps `tide up` start-up fast.
    if shutil.which("nvidia-smi") is None:
        return 0
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


class _EmbeddedUvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # `tide up` owns SIGINT/SIGTERM: it drains replicas before it exits.
        yield


class TideServer:
    """`hub` None: the embedded gateway (`tide up`). A `GatewayHub`: gateways are other processes."""

    def __init__(self, config: ServerConfig, hub: GatewayHub | None = None, ray: RayOptions | None = None) -> None:
        self.config = config
        self._pool_metrics = False
        prepare_data_dir(config)
        self.token, self.token_created = load_or_create_token(config)
        self.store = Store(config.db_url)
        config.buckets_root.mkdir(parents=True, exist_ok=True)
        storage = StorageConfig.from_env(local_root=config.buckets_root)
        self.backend: Backend
        self._inventory_source: Callable[[], Inventory]
        if ray is None:  # this machine (or a declared fleet), replicas as child processes
            inventory = node_inventory(config.inventory_path, config.cpu_slots)
            self._inventory_source = lambda: inventory
            cache = WeightsCache(config.weights_cache_dir, budget_bytes=config.cache_budget_bytes)
            self.cache: WeightsCache | None = cache
            self.backend = LocalBackend(
                config.data_dir, CachedWeights(storage, cache), host="127.0.0.1", warm_pool=config.warm_pool
            )
            check_weights: WeightsCheck | None = weights_checker(storage, cache)
        else:  # the Ray cluster's nodes, replicas as Ray actors on them (docs/RAY.md)
            from tide.backends.ray import create

            self.backend, ray_inventory = create(ray, config.data_dir, storage, warm_pool=config.warm_pool)
            self.cache = None  # each node keeps its own (TIDE_RAY_CACHE_BUDGET there)
            check_weights = None  # the nodes fetch weights with their own settings
            self._inventory_source = ray_inventory.current
        self.inventory = self._inventory_source()
        self.catalog = catalog_from_inventory(self.inventory)
        self.gateway = Gateway(
            on_demand=self._on_demand,
            upstream_idle_timeout_s=config.upstream_idle_timeout_s,
            api_keys=GatewayKeys.from_config(config.api_keys_file),
            limits=config.connection_limits,
            hold_until_routes=True,
        )
        self.hub = hub
        self.controller = Controller(
            self.store,
            self.backend,
            hub if hub is not None else self.gateway,
            self.catalog,
            inventory=self.current_inventory,
            claims=ClaimStore(self.store),
            run_log=RunLog(self.store),
            drain_timeout_s=config.drain_timeout_s,
            usage_retention_s=config.usage_retention_s,
            check_weights=check_weights,
            parked_memory_fraction=config.parked_memory_fraction,
            gateway_token=self.token,
        )
        api_ctx = ApiContext(
            store=self.store,
            catalog=self.current_catalog,
            token=self.token,
            wake_controller=self.controller.wake,
            logs=self.backend.logs,
            parameters=lambda: parameters_json(self.current_catalog()),
            metrics=self.controller.metrics.exposition,
            gateway_url=f"http://{config.host}:{config.gateway_port}",
            claims=ClaimsContext(
                store=self.store,
                inventory=self.current_inventory,
                wake_controller=self.controller.wake,
                gateway_usage=lambda: usage_json(self.controller.metrics.gateway_traffic.snapshot),
            ),
        )
        self.app = create_app(api_ctx)
        if hub is not None:
            hub.on_demand = self._on_demand
            self.app.include_router(hub.router(self.token))
        self._uvicorn: uvicorn.Server | None = None

    async def housekeeping(self) -> None:
        """Every few seconds: replica logs within their retention (tide.control.retention), the weights
        cache within its budget (least recently used weights no replica leases go first)."""
        logs_dir = self.config.data_dir / "logs"
        while True:
            try:
                deployments = await asyncio.to_thread(self.store.deployment_created_times)
                live = {Path(s.log_path) for s in self.backend.replicas() if s.log_path}
                await asyncio.to_thread(
                    sweep_logs,
                    logs_dir,
                    deployments,
                    live,
                    time.time(),
                    self.config.log_retention_s,
                    self.config.logs_per_deployment,
                )
                if self.cache is not None:
                    evicted = await asyncio.to_thread(self.cache.evict)
                    if evicted:
                        log.info("weights cache over its budget: evicted %s", ", ".join(evicted))
            except Exception:
                log.exception("housekeeping failed; retrying")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)

    def _on_demand(self, deployment_id: str) -> None:
        self.controller.on_demand(deployment_id)

    def current_inventory(self) -> Inventory:
        """The inventory now. A Ray cluster's changes as nodes join and leave; when the instance types or
        zones offered change, the catalog (parameters endpoint, spec validation) follows."""
        inventory = self._inventory_source()
        if inventory is not self.inventory:
            offered = (inventory.types, inventory.zone_instance_types())
            if offered != (self.inventory.types, self.inventory.zone_instance_types()):
                self.catalog = catalog_from_inventory(inventory)
                self.controller.catalog = self.catalog
            self.inventory = inventory
        return inventory

    def current_catalog(self) -> Catalog:
        self.current_inventory()
        return self.catalog

    def start_warm_pool(self) -> None:
        """The backend's warm engine pool (the local one's processes, the Ray one's spare hosts) fills in the
        background; its gauges join /metrics."""
        if isinstance(self.backend, WarmPools) and self.backend.warm_pools:
            self.backend.start_warm_pool()
            if not self._pool_metrics:
                self.controller.metrics.registry.register(WarmPoolMetrics(self.backend.warm_pools))
                self._pool_metrics = True

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        cfg = uvicorn.Config(
            self.app,
            host=self.config.host,
            port=self.config.api_port,
            log_level="warning",
            lifespan="off",
            **uvicorn_options(self.config.connection_limits),
        )
        self._uvicorn = _EmbeddedUvicorn(cfg)
        await self.gateway.start(self.config.host, self.config.gateway_port)
        self.start_warm_pool()
        api_task = asyncio.create_task(self._uvicorn.serve())
        control_task = asyncio.create_task(self.controller.run())
        housekeeping = asyncio.create_task(self.housekeeping())
        while not self._uvicorn.started:
            if api_task.done():
                await api_task
                raise RuntimeError(f"the management API could not listen on port {self.config.api_port}")
            await asyncio.sleep(0.02)
        if ready is not None:
            ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        done_waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({done_waiter, api_task, control_task}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down: draining replicas")
        housekeeping.cancel()
        await self.controller.close()
        control_task.cancel()
        await self.gateway.stop()
        self._uvicorn.should_exit = True
        with contextlib.suppress(Exception):
            await api_task
        self.store.close()


def run_server(config: ServerConfig, ray: RayOptions | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness probe is noise
    freeze_after_full_collections(time.monotonic)
    server = TideServer(config, ray=ray)

    def announce() -> None:
        print(f"tide {__version__} up", flush=True)
        print(f"  gateway (OpenAI-compatible): http://{config.host}:{config.gateway_port}/v1", flush=True)
        print(f"  management API:              http://{config.host}:{config.api_port}/v1alpha1/inference", flush=True)
        print(f"  data directory:              {config.data_dir}", flush=True)
        print(f"  local buckets:               {config.buckets_root}", flush=True)
        if ray is not None:
            print(f"  replicas on the Ray cluster: {ray.address}", flush=True)
        keys = server.gateway.api_keys
        access = f"API keys required ({keys.count} loaded)" if keys is not None else "open (no API keys configured)"
        print(f"  default gateway access:      {access}", flush=True)
        if server.token_created:
            print(f"  API token (shown once, stored in {config.token_path}): {server.token}", flush=True)

    try:
        import uvloop

        uvloop.run(server.serve(ready=announce))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"tide up: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


# -- scaled out: `tide controller` and `tide api` ----------------------------------------------------------


class ControllerServer:
    """Controller + store + local backend + management API + the gateway channel, behind a leader lease.

    Every controller process serves the API (writes land in the store; the leader reconciles them within
    a second) and the channel (only the leader answers it: standbys say 503, gateways move on). Only the
    lease holder runs the reconcile loop. Losing the lease ends the process: its replicas are stopped and
    a fresh start campaigns again, so two controllers never act at once.
    """

    def __init__(self, config: ServerConfig, lease_ttl_s: float = LEASE_TTL_S, ray: RayOptions | None = None) -> None:
        self.config = config
        self.hub = GatewayHub()
        self.server = TideServer(config, hub=self.hub, ray=ray)
        self.lease = LeaderLease(self.server.store, ttl_s=lease_ttl_s)
        self.hub.is_leader = lambda: self._leading
        self._leading = False
        self._control_task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    def _elected(self) -> None:
        log.info("elected leader (term %s): taking over", self.lease.term)
        self._leading = True
        self.server.start_warm_pool()
        self._control_task = asyncio.create_task(self.server.controller.run())

    def _lost_lease(self) -> None:
        if self._leading:
            log.warning("leader lease lost: stopping")
        self._leading = False
        self.hub.close()
        self._lost.set()

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        srv = self.server
        cfg = uvicorn.Config(
            srv.app,
            host=self.config.host,
            port=self.config.api_port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
            **uvicorn_options(self.config.connection_limits),
        )
        uv = _EmbeddedUvicorn(cfg)
        api_task = asyncio.create_task(uv.serve())
        while not uv.started:
            if api_task.done():
                await api_task
                raise RuntimeError(f"the management API could not listen on port {self.config.api_port}")
            await asyncio.sleep(0.02)
        lease_task = asyncio.create_task(self.lease.hold(self._elected, self._lost_lease))
        housekeeping = asyncio.create_task(srv.housekeeping())
        if ready is not None:
            ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        waiters = {asyncio.create_task(stop.wait()), asyncio.create_task(self._lost.wait()), api_task, lease_task}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down: draining replicas")
        housekeeping.cancel()
        self.hub.close()
        await srv.controller.close()
        if self._control_task is not None:
            self._control_task.cancel()
        lease_task.cancel()  # releases the lease (after the drain) so a standby need not wait the TTL
        with contextlib.suppress(BaseException):
            await lease_task
        uv.should_exit = True
        with contextlib.suppress(Exception):
            await api_task
        srv.store.close()
        if self._lost.is_set() and not stop.is_set():
            raise SystemExit(3)


def run_controller(config: ServerConfig, lease_ttl_s: float, ray: RayOptions | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    freeze_after_full_collections(time.monotonic)
    server = ControllerServer(config, lease_ttl_s=lease_ttl_s, ray=ray)

    def announce() -> None:
        print(f"tide {__version__} controller (holder {server.lease.holder})", flush=True)
        print(f"  management API + gateway channel: http://{config.host}:{config.api_port}", flush=True)
        print(f"  database:                         {config.db_url}", flush=True)
        if server.server.token_created:
            print(f"  API token (shown once, stored in {config.token_path}): {server.server.token}", flush=True)

    _run(server.serve(ready=announce), "tide controller")


def run_api(config: ServerConfig) -> None:
    """The management API alone over the shared database: the leader sees changes within a second; it
    validates against the inventory the leader publishes (tide.api.published_view)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    freeze_after_full_collections(time.monotonic)
    prepare_data_dir(config)
    token, created = load_or_create_token(config)
    store = Store(config.db_url)
    fallback = node_inventory(config.inventory_path, config.cpu_slots)
    view = PublishedView(PublishedState(store), fallback, catalog_from_inventory)
    stop_refreshing = view.start()

    def no_wake() -> None:
        # The leader reconciles at least once a second; it reads the store then.
        pass

    def no_logs(deployment_id: str, lines: int, after: Mapping[str, int] | None) -> dict[str, LogText]:
        return {}  # replica logs are on the controllers' machines

    app = create_app(
        ApiContext(
            store=store,
            catalog=view.catalog,
            token=token,
            wake_controller=no_wake,
            logs=no_logs,
            parameters=lambda: parameters_json(view.catalog()),
            claims=ClaimsContext(store=store, inventory=view.inventory, wake_controller=no_wake),
        )
    )
    print(f"tide {__version__} api on http://{config.host}:{config.api_port}", flush=True)
    if created:
        print(f"  API token (shown once, stored in {config.token_path}): {token}", flush=True)
    try:
        uvicorn.run(
            app,
            host=config.host,
            port=config.api_port,
            log_level="warning",
            **uvicorn_options(config.connection_limits),
        )
    finally:
        stop_refreshing.set()
        store.close()


def _run(main: Any, name: str) -> None:
    try:
        import uvloop

        uvloop.run(main)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
