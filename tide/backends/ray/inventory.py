"""The inventory of a Ray cluster: each alive node that declares a Tide instance type is one instance.

A node declares what it is with Ray node labels (`ray start --labels`) or, equivalently, with custom
resources (`ray start --resources`); labels win when both are given:

| what           | label                       | resource                      | default             |
|----------------|-----------------------------|-------------------------------|---------------------|
| instance type  | `tide.io/instance-type=T`   | `{"tide-instance:T": 1}`      | none: not offered   |
| zone           | `tide.io/zone=Z`            | `{"tide-zone:Z": 1}`          | `ray.io/availability-zone`, else `default` |
| capacity class | `tide.io/capacity-class=C`  | `{"tide-class:C": 1}`         | `on_demand`         |
| GPU model      | `tide.io/gpu-model=M`       | Ray's `accelerator_type:M`    | `gpu`               |

GPUs are the node's `GPU` resource (`ray start --num-gpus N`). The instance id is the Ray node id, so
the scheduler's placement names the node the replica must run on. `inventory_from_nodes` is pure (it
reads `ray.nodes()`-shaped dicts); `RayInventory` refreshes it from the cluster in a background thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tide.scheduling import ON_DEMAND, Instance, InstanceType, Inventory, parse_capacity_class
from tide.scheduling.inventory import type_key
from tide.timing import RAY_REFRESH_S

log = logging.getLogger("tide.backends.ray")

TYPE_LABEL = "tide.io/instance-type"
ZONE_LABEL = "tide.io/zone"
CLASS_LABEL = "tide.io/capacity-class"
GPU_MODEL_LABEL = "tide.io/gpu-model"
TYPE_RESOURCE = "tide-instance:"
ZONE_RESOURCE = "tide-zone:"
CLASS_RESOURCE = "tide-class:"
RAY_ZONE_LABEL = "ray.io/availability-zone"
DEFAULT_ZONE = "default"


@dataclass(frozen=True)
class NodeInfo:
    """One Ray node as Tide sees it (kept after the node dies, to say which node was lost)."""

    node_id: str
    address: str
    instance_type: str
    zone: str
    capacity_class: str
    gpus: int

    def describe(self) -> str:
        return f"node {short_id(self.node_id)} ({self.zone}, {self.instance_type})"


def short_id(node_id: str) -> str:
    return node_id[:12]


def inventory_from_nodes(
    nodes: Iterable[Mapping[str, Any]], known_types: Iterable[InstanceType] = ()
) -> tuple[Inventory, dict[str, NodeInfo]]:
    """The inventory of the alive nodes that declare an instance type, and every such node's info.

    `known_types` (types seen before) stay in the inventory when their last node is gone, so deployments
    that name them wait for capacity instead of becoming invalid. Nodes of one type that disagree on their
    GPU count offer the smallest count (a replica must fit on any of them)."""
    types: dict[str, InstanceType] = {type_key(t.id): t for t in known_types}
    seen: dict[str, InstanceType] = {}
    instances: list[Instance] = []
    infos: dict[str, NodeInfo] = {}
    for node in sorted(nodes, key=lambda n: str(n.get("NodeID", ""))):
        info = node_info(node)
        if info is None:
            continue
        infos[info.node_id] = info
        if not _alive(node):
            continue
        key = type_key(info.instance_type)
        offered = _instance_type(node, info)
        previous = seen.get(key)
        if previous is None:
            seen[key] = offered  # the first node (by id) names the type and its GPU model
        elif previous.gpus != offered.gpus:
            log.warning(
                "nodes of instance type %s disagree on their GPU count (%d, %d): offering %d",
                info.instance_type,
                previous.gpus,
                offered.gpus,
                min(previous.gpus, offered.gpus),
            )
            seen[key] = replace(previous, gpus=min(previous.gpus, offered.gpus))
        instances.append(
            Instance(
                id=info.node_id,
                instance_type=offered.id,
                zone=info.zone,
                capacity_class=parse_capacity_class(info.capacity_class),
            )
        )
    types.update(seen)
    # Spell every instance's type as its type entry does (the first node seen names it).
    instances = [
        Instance(i.id, types[type_key(i.instance_type)].id, i.zone, i.capacity_class)
        for i in sorted(instances, key=lambda i: i.id)
    ]
    return Inventory(tuple(sorted(types.values(), key=lambda t: type_key(t.id))), tuple(instances)), infos


def node_info(node: Mapping[str, Any]) -> NodeInfo | None:
    """What a node declares, or None when it declares no instance type (or no GPUs: it cannot run one)."""
    labels: Mapping[str, str] = node.get("Labels") or {}
    resources: Mapping[str, float] = node.get("Resources") or {}
    node_id = str(node.get("NodeID", ""))
    instance_type = labels.get(TYPE_LABEL) or _from_resource(resources, TYPE_RESOURCE)
    if not node_id or not instance_type:
        return None
    gpus = int(resources.get("GPU", 0))
    if gpus < 1:
        if _alive(node):
            log.warning("ray node %s declares instance type %s but has no GPUs: not offered", node_id, instance_type)
        return None
    zone = labels.get(ZONE_LABEL) or _from_resource(resources, ZONE_RESOURCE) or labels.get(RAY_ZONE_LABEL)
    capacity_class = labels.get(CLASS_LABEL) or _from_resource(resources, CLASS_RESOURCE) or ON_DEMAND
    try:
        parse_capacity_class(capacity_class)
    except ValueError:
        log.warning("ray node %s: unknown capacity class %r; using on_demand", node_id, capacity_class)
        capacity_class = ON_DEMAND
    return NodeInfo(
        node_id=node_id,
        address=str(node.get("NodeManagerAddress", "")),
        instance_type=instance_type,
        zone=zone or DEFAULT_ZONE,
        capacity_class=capacity_class,
        gpus=gpus,
    )


def _instance_type(node: Mapping[str, Any], info: NodeInfo) -> InstanceType:
    labels: Mapping[str, str] = node.get("Labels") or {}
    resources: Mapping[str, float] = node.get("Resources") or {}
    gpu_model = labels.get(GPU_MODEL_LABEL) or _from_resource(resources, "accelerator_type:") or "gpu"
    return InstanceType(
        id=info.instance_type,
        gpu_model=gpu_model,
        gpus=info.gpus,
        memory_gib=int(resources.get("memory", 0) // 2**30),
        cpus=int(resources.get("CPU", 0)),
    )


def _from_resource(resources: Mapping[str, float], prefix: str) -> str | None:
    found = sorted(name[len(prefix) :] for name in resources if name.startswith(prefix) and len(name) > len(prefix))
    return found[0] if found else None


def _alive(node: Mapping[str, Any]) -> bool:
    return bool(node.get("Alive", node.get("alive", False)))


class RayInventory:
    """The cluster's inventory, refreshed from `ray.nodes()` every `refresh_s` in a daemon thread, so the
    controller's reconcile never waits on the cluster. Types seen once stay known; nodes seen once stay
    describable (`describe`), so a lost node is named with its zone and type."""

    def __init__(self, list_nodes: Callable[[], list[dict[str, Any]]], refresh_s: float = RAY_REFRESH_S) -> None:
        self._list_nodes = list_nodes
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._infos: dict[str, NodeInfo] = {}
        self._alive: set[str] = set()
        self._inventory = Inventory((), ())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tide-ray-inventory", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:  # the GCS restarting, a network blip: keep the last inventory, say so
                log.warning("could not list the Ray cluster's nodes; keeping the last inventory", exc_info=True)

    def refresh(self) -> Inventory:
        nodes = self._list_nodes()
        with self._lock:
            inventory, infos = inventory_from_nodes(nodes, self._inventory.types)
            self._infos.update(infos)
            self._alive = {i.id for i in inventory.instances}
            self._inventory = inventory
        return inventory

    def current(self) -> Inventory:
        with self._lock:
            return self._inventory

    def node(self, node_id: str) -> NodeInfo | None:
        with self._lock:
            return self._infos.get(node_id)

    def alive(self, node_id: str) -> bool:
        with self._lock:
            return node_id in self._alive

    def describe(self, node_id: str) -> str:
        info = self.node(node_id)
        return info.describe() if info is not None else f"node {short_id(node_id)}"
