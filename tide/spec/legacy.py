"""Stored specs written before the hosted wire format, rewritten into it (pure).

Before it, a stored spec had `name` (also the model name) and `weights: {bucket, path, ...}` and no
`gatewayIds`. Now: `model: {name, bucket, path}`, `weights` keeps only Tide's download filters, and the
deployment sits on the default gateway. The store applies this once when it opens an old database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tide.spec.deployment import DEFAULT_GATEWAY_ID


def needs_migration(spec: Mapping[str, Any]) -> bool:
    return "model" not in spec or "gatewayIds" not in spec


def migrate_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The same deployment in the current shape; a spec already in it comes back unchanged."""
    out = dict(spec)
    if "model" not in out:
        weights = dict(out.pop("weights", None) or {})
        model: dict[str, Any] = {"name": out["name"]}
        for key in ("bucket", "path"):
            if key in weights:
                model[key] = weights.pop(key)
        out["model"] = model
        if weights:
            out["weights"] = weights
    out.setdefault("gatewayIds", [DEFAULT_GATEWAY_ID])
    # Keep the key order of deployment_to_dict, so a migrated spec equals a freshly written one.
    order = ["name", "gatewayIds", "model", "weights"]
    return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}
