"""A real management API (the app of `tide api`, with capacity claims over a declared inventory) served by
uvicorn on a free loopback port in a thread, over a SQLite store: what the SDK and CLI tests talk to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from tests.support.waiting import wait_until
from tide.api.app import ApiContext, create_app
from tide.api.claims import ClaimsContext
from tide.api.parameters import parameters_json
from tide.backends.logfiles import LogText
from tide.scheduling import declared_inventory
from tide.spec import InstanceTypeInfo, default_catalog
from tide.store import Store

TOKEN = "tide_test_token"
CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))
ZONE = "us-east-04a"
INVENTORY = declared_inventory(
    {
        "instanceTypes": [{"id": "H100-8x", "gpuModel": "H100", "gpus": 8}],
        "instances": [{"type": "H100-8x", "zone": ZONE, "count": 2, "class": "reserved"}],
    }
)


@dataclass
class ApiServer:
    url: str
    store: Store
    # deployment id -> replica id -> its whole log: what the logs route answers from
    logs: dict[str, dict[str, str]] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_reader(server: ApiServer) -> Any:
    def read(deployment_id: str, tail: int, after: Mapping[str, int] | None) -> dict[str, LogText]:
        out = {}
        for replica_id, text in server.logs.get(deployment_id, {}).items():
            start = (after or {}).get(replica_id, 0) if after is not None else 0
            part = text[start:] if after is not None else "".join(text.splitlines(keepends=True)[-tail:])
            out[replica_id] = LogText(part, len(text))
        return out

    return read


@contextmanager
def api_server(tmp_path: Path) -> Iterator[ApiServer]:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    port = _free_port()
    server = ApiServer(f"http://127.0.0.1:{port}", store)
    claims = ClaimsContext(store=store, inventory=lambda: INVENTORY, wake_controller=lambda: None)
    app = create_app(
        ApiContext(
            store=store,
            catalog=lambda: CATALOG,
            token=TOKEN,
            wake_controller=lambda: None,
            logs=_log_reader(server),
            parameters=lambda: parameters_json(CATALOG),
            claims=claims,
        )
    )
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    wait_until(lambda: uv.started or not thread.is_alive(), 20, "the test API server to start", poll=0.02)
    assert uv.started, "the test API server exited while starting"
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(10)
        store.close()
