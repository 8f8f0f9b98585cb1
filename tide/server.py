"""`tide up`: the embedded default. API, gateway and controller on one event loop, SQLite, local backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
import yaml

from tide import __version__
from tide.api.app import ApiContext, create_app
from tide.api.claims import ClaimsContext
from tide.api.parameters import parameters_json
from tide.backends.local import LocalBackend
from tide.backends.node_weights import CachedWeights
from tide.config import ServerConfig, load_or_create_token
from tide.control.controller import Controller
from tide.engines.vllm import installed_vllm_versions
from tide.gateway import Gateway
from tide.scheduling import Inventory, InventoryError, declared_inventory, local_inventory
from tide.spec import Catalog, InstanceTypeInfo, default_catalog
from tide.store import Store
from tide.store.claims import ClaimStore, RunLog
from tide.weights import StorageConfig, WeightsCache

log = logging.getLogger("tide.server")


def node_inventory(declared_path: Path | None, cpu_slots: int) -> Inventory:
    """A declared fleet of virtual instances (tests, demos, planning), or this machine as it is."""
    if declared_path is not None:
        try:
            return declared_inventory(yaml.safe_load(declared_path.read_text()))
        except InventoryError as exc:
            raise SystemExit(f"inventory {declared_path}: {exc}") from None
    gpus = _gpu_count()
    return local_inventory("local-gpu" if gpus else None, gpus, cpu_slots=cpu_slots)


def catalog_from_inventory(inventory: Inventory) -> Catalog:
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
    return default_catalog(builtin_version=__version__, vllm_versions=installed_vllm_versions(), instance_types=types)


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
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.token, self.token_created = load_or_create_token(config)
        self.inventory = node_inventory(config.inventory_path, config.cpu_slots)
        self.catalog = catalog_from_inventory(self.inventory)
        self.store = Store(config.db_url)
        config.buckets_root.mkdir(parents=True, exist_ok=True)
        storage = StorageConfig.from_env(local_root=config.buckets_root)
        cache = WeightsCache(config.weights_cache_dir, budget_bytes=config.cache_budget_bytes)
        self.backend = LocalBackend(config.data_dir, CachedWeights(storage, cache), host="127.0.0.1")
        self.gateway = Gateway(on_demand=self._on_demand)
        self.controller = Controller(
            self.store,
            self.backend,
            self.gateway,
            self.catalog,
            inventory=lambda: self.inventory,
            claims=ClaimStore(self.store),
            run_log=RunLog(self.store),
            drain_timeout_s=config.drain_timeout_s,
        )
        api_ctx = ApiContext(
            store=self.store,
            catalog=lambda: self.catalog,
            token=self.token,
            wake_controller=self.controller.wake,
            logs=self.backend.logs,
            parameters=lambda: parameters_json(self.catalog),
            metrics=self.controller.metrics.exposition,
            claims=ClaimsContext(
                store=self.store, inventory=lambda: self.inventory, wake_controller=self.controller.wake
            ),
        )
        self.app = create_app(api_ctx)
        self._uvicorn: uvicorn.Server | None = None

    def _on_demand(self, deployment_id: str) -> None:
        self.controller.on_demand(deployment_id)

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        cfg = uvicorn.Config(
            self.app, host=self.config.host, port=self.config.api_port, log_level="warning", lifespan="off"
        )
        self._uvicorn = _EmbeddedUvicorn(cfg)
        await self.gateway.start(self.config.host, self.config.gateway_port)
        api_task = asyncio.create_task(self._uvicorn.serve())
        control_task = asyncio.create_task(self.controller.run())
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
        await self.controller.close()
        control_task.cancel()
        await self.gateway.stop()
        self._uvicorn.should_exit = True
        with contextlib.suppress(Exception):
            await api_task
        self.store.close()


def run_server(config: ServerConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness probe is noise
    server = TideServer(config)

    def announce() -> None:
        print(f"tide {__version__} up", flush=True)
        print(f"  gateway (OpenAI-compatible): http://{config.host}:{config.gateway_port}/v1", flush=True)
        print(f"  management API:              http://{config.host}:{config.api_port}/v1alpha1/inference", flush=True)
        print(f"  data directory:              {config.data_dir}", flush=True)
        print(f"  local buckets:               {config.buckets_root}", flush=True)
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
