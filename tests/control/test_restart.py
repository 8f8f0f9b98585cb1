"""A controller that restarts resumes each deployment's scale from the store: a deployment that was scaled to
zero stays at zero (no replica, no GPU bought) until a request comes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.backends import RecordingBackend
from tide.control.controller import Controller
from tide.gateway import Gateway
from tide.scheduling import local_inventory
from tide.spec import InstanceTypeInfo, default_catalog, deployment_to_dict, parse_deployment
from tide.store import Store

CATALOG = default_catalog(builtin_version="0.1.0", instance_types=(InstanceTypeInfo("cpu-local", "none", 8, 0, 0),))


def spec(name: str, minimum: int) -> dict[str, object]:
    raw = {
        "name": name,
        "weights": {"bucket": "models", "path": "tiny"},
        "runtime": {"engine": "builtin"},
        "autoscaling": {"min": minimum, "max": 3},
    }
    return deployment_to_dict(parse_deployment(raw, CATALOG))


def test_a_restart_does_not_wake_deployments_that_were_scaled_to_zero(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tide.db'}")
    for name, minimum, desired in (("idle", 0, 0), ("busy", 0, 2), ("fresh", 0, None), ("pinned", 1, 1)):
        store.create_deployment(name, spec(name, minimum), 0.0)
        if desired is not None:  # what the controller before the restart last wrote
            store.set_status(
                name, {"state": "STATUS_READY", "desiredReplicas": desired, "observedGeneration": 1, "conditions": []}
            )

    async def one_reconcile() -> list[str]:
        backend = RecordingBackend()
        controller = Controller(
            store, backend, Gateway(), CATALOG, inventory=lambda: local_inventory(None, 0, cpu_slots=8)
        )
        await controller.reconcile()
        return sorted(backend.started)

    started = asyncio.run(one_reconcile())
    store.close()
    # idle: stays at zero. busy: resumes its two. fresh (never reconciled): its initial scale. pinned: its min.
    assert started == ["busy", "busy", "fresh", "pinned"]
