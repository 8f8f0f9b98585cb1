"""A real management API (SQLite store, a declared inventory with claims, the token below) served by uvicorn
on a free loopback port in a thread of the test process: what schemathesis and the OpenAPI tests talk to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from tests.support.waiting import wait_until
from tide.api.app import ApiContext, create_app
from tide.api.claims import ClaimsContext
from tide.api.parameters import parameters_json
from tide.backends.logfiles import LogText
from tide.scheduling import declared_inventory
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

TOKEN = "schema-test-token-123456"
ZONE = "us-east-04a"
CATALOG = default_catalog(
    builtin_version="0.1.0",
    instance_types=(InstanceTypeInfo("cpu-local", "none (CPU)", 16, 0, 0, zones=(ZONE,)),),
)
DECLARED: dict[str, Any] = {
    "instanceTypes": [{"id": "H100-8x", "gpuModel": "H100", "gpus": 8, "memoryGib": 1024, "cpus": 128}],
    "instances": [{"type": "h100-8x", "zone": ZONE, "count": 2, "class": "reserved"}],
}


def management_app(db: Path) -> tuple[FastAPI, Store]:
    store = Store(f"sqlite:///{db}")
    inventory = declared_inventory(DECLARED)
    ctx = ApiContext(
        store=store,
        catalog=lambda: CATALOG,
        token=TOKEN,
        wake_controller=lambda: None,
        logs=lambda deployment_id, tail, after: {f"{deployment_id}-r1": LogText("hello\n", 6)},
        parameters=lambda: parameters_json(CATALOG),
        claims=ClaimsContext(store=store, inventory=lambda: inventory, wake_controller=lambda: None),
        metrics=lambda: b"# no metrics\n",
        gateway_url="http://127.0.0.1:8080",
    )
    return create_app(ctx), store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """`app` on a loopback port until the block ends; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, "the API under test to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
