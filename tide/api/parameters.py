"""The `/deployments/parameters` document: what a deployment may choose on this installation."""

from __future__ import annotations

from typing import Any

from tide.spec import Catalog


def parameters_json(catalog: Catalog) -> dict[str, Any]:
    zones: dict[str, list[str]] = {}
    for t in catalog.instance_types:
        for zone in t.zones:
            zones.setdefault(zone, []).append(t.id)
    return {
        "resourceParameters": {
            "instanceTypes": [
                {"id": t.id, "gpuModel": t.gpu_model, "gpuCount": t.gpus, "memoryGib": t.memory_gib, "cpus": t.cpus}
                for t in catalog.instance_types
            ]
        },
        "runtimeParameters": {
            "engines": [
                {
                    "engine": e.name,
                    "versions": list(e.versions),
                    "runtimeConfigOptions": list(e.config_keys),
                    "runtimeConfigSchema": [o.to_json() for o in e.config_schema],
                    "description": e.description,
                }
                for e in catalog.engines.values()
            ],
        },
        "zoneInstanceTypes": zones,
    }
