"""The Ray backend: replicas as Ray actors on the cluster's nodes, the inventory from the cluster's nodes.

Imported only with `--backend ray` (Ray is the optional `ray` extra). See docs/RAY.md.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tide.timing import RAY_CONNECT_TIMEOUT_S
from tide.weights import StorageConfig

if TYPE_CHECKING:
    from tide.backends.ray.backend import RayBackend
    from tide.backends.ray.inventory import RayInventory

NAMESPACE = "tide"


@dataclass(frozen=True)
class RayOptions:
    """`--backend ray --ray-address ADDRESS`: the cluster Tide runs replicas on."""

    address: str


def connect(options: RayOptions) -> None:
    """Join the cluster as a driver (this machine must be a node of it, e.g. the head). Replica actors
    belong to this driver: they end with this process, like the local backend's child processes."""
    import ray

    if not ray.is_initialized():
        _check_reachable(options.address)
        ray.init(
            address=options.address,
            namespace=NAMESPACE,
            log_to_driver=False,  # replica logs come through `tide logs`, not this process's stdout
            logging_level=logging.WARNING,
        )


def _check_reachable(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """`ray.init` retries an unreachable GCS for minutes; a wrong address should fail in seconds."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port (the head node's GCS address), not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc}); is `ray start --head` running there?") from None


def list_nodes() -> list[dict[str, Any]]:
    import ray

    return list(ray.nodes())


def create(
    options: RayOptions,
    data_dir: Path,
    storage: StorageConfig,
    warm_pool: int = 0,
) -> tuple[RayBackend, RayInventory]:
    """Join the cluster; the backend and the live inventory of its nodes. SystemExit with a message a user
    can act on when Ray is not installed or the cluster cannot be reached."""
    try:
        from tide.backends.ray.backend import RayBackend
        from tide.backends.ray.inventory import RayInventory
    except ImportError as exc:
        raise SystemExit(f"--backend ray needs Ray on this machine: pip install 'tide[ray]' ({exc})") from None
    try:
        connect(options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SystemExit(f"cannot join the Ray cluster at {options.address}: {exc}") from None
    inventory = RayInventory(list_nodes)
    inventory.start()
    return RayBackend(data_dir, storage, inventory, warm_pool=warm_pool), inventory
