"""Standalone routing: a YAML file naming models, their deployments, weights and endpoint URLs.

models:
  tiny:
    - deployment: tiny
      weight: 100
      endpoints: [http://127.0.0.1:18000/v1]
      max_queue: 1000          # optional
      max_queue_wait_s: 600    # optional
      max_concurrency: 64      # optional, per endpoint
      routing: prefix-aware    # optional: least-loaded (default) or prefix-aware
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tide.gateway.routes import DeploymentRoute, RouteTable
from tide.gateway.wire import deployment_route_from_json
from tide.spec.routing import LEAST_LOADED, ROUTING_POLICIES

_WIRE_NAMES = {"weight": "weight", "max_queue": "maxQueue", "max_queue_wait_s": "maxQueueWaitS"}


def parse_route_config(config: Any) -> RouteTable:
    if not isinstance(config, dict) or not isinstance(config.get("models"), dict):
        raise ValueError("route file: expected a mapping with a 'models' mapping")
    routes: dict[str, tuple[DeploymentRoute, ...]] = {}
    for model_name, deployments in config["models"].items():
        if not isinstance(deployments, list):
            raise ValueError(f"route file: models.{model_name} must be a list of deployments")
        parsed: list[DeploymentRoute] = []
        for index, entry in enumerate(deployments):
            where = f"models.{model_name}[{index}]"
            if not isinstance(entry, dict):
                raise ValueError(f"route file: {where} must be a mapping")
            deployment_id = str(entry.get("deployment", model_name))
            endpoints = entry.get("endpoints", [])
            if not isinstance(endpoints, list) or not all(isinstance(url, str) for url in endpoints):
                raise ValueError(f"route file: {where}.endpoints must be a list of URLs")
            max_concurrency = entry.get("max_concurrency")
            routing = entry.get("routing", LEAST_LOADED)
            if routing not in ROUTING_POLICIES:
                raise ValueError(f"route file: {where}.routing must be one of {', '.join(ROUTING_POLICIES)}")
            # The route file's snake_case names onto the wire format's; what is left out takes the spec's
            # defaults there, so a standalone gateway and a controller's routes mean the same.
            wire: dict[str, Any] = {
                "deploymentId": deployment_id,
                "modelName": str(model_name),
                "routing": routing,
                "replicas": [
                    {
                        "replicaId": f"{deployment_id}-{i}",
                        "baseUrl": url,
                        "maxConcurrency": int(max_concurrency) if max_concurrency else None,
                    }
                    for i, url in enumerate(endpoints)
                ],
            }
            for name, wire_name in _WIRE_NAMES.items():
                if name in entry:
                    wire[wire_name] = entry[name]
            parsed.append(deployment_route_from_json(wire))
        routes[str(model_name)] = tuple(parsed)
    return RouteTable(routes)


def load_route_file(path: str | Path) -> RouteTable:
    return parse_route_config(yaml.safe_load(Path(path).read_text()))
