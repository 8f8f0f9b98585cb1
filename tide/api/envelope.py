"""The hosted API's wire format, in one place: records -> response bodies, and the deprecation notice
for requests still in the old deployment shape.

Handlers build their answers only through this module, so the shape (envelope keys, RFC 3339 times,
condition fields) is one fact here (API.md, docs/API-NOTES.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tide.spec import legacy_fields
from tide.store import DeploymentRecord
from tide.store.claims import ClaimRecord
from tide.store.gateways import GatewayRecord, KeyRecord
from tide.timestamps import format_instant

# Until the release after this one; then the old shape gets a 400 that says how to write it now.
SUNSET = "the next release"


def deprecation_headers(raw: Any) -> dict[str, str]:
    """`Deprecation` and `Warning` headers when a deployment request used the old shape, else none."""
    used = legacy_fields(raw)
    if not used:
        return {}
    text = (
        f"deprecated deployment fields {', '.join(used)}: write model: {{name, bucket, path}} instead "
        f"(model.name is the name clients route by); the old shape is refused from {SUNSET}"
    )
    return {"Deprecation": "true", "Warning": f'299 tide "{text}"'}


def rfc3339(seconds: float | None) -> str | None:
    return None if seconds is None else format_instant(seconds)


def hosted_condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    """A stored condition (`lastTransitionTime` in epoch seconds) as the hosted API shows it."""
    when = condition.get("lastUpdateTime", condition.get("lastTransitionTime"))
    return {
        "type": condition.get("type", ""),
        "status": condition.get("status", "True"),
        "lastUpdateTime": rfc3339(when) if isinstance(when, int | float) else when,
        "reason": condition.get("reason") or condition.get("type", ""),
        "message": condition.get("message", ""),
        "zone": condition.get("zone", ""),
    }


def hosted_status(
    state: str, stored: Mapping[str, Any], created_at: float, updated_at: float, **extra: Any
) -> dict[str, Any]:
    """`status.status` is the state; times RFC 3339; Tide's own status fields follow, unchanged."""
    rest = {k: v for k, v in stored.items() if k not in ("state", "status", "conditions")}
    return {
        "status": state,
        "createdAt": rfc3339(created_at),
        "updatedAt": rfc3339(updated_at),
        "conditions": [hosted_condition(c) for c in stored.get("conditions") or []],
        **rest,
        **extra,
    }


def deployment_resource(record: DeploymentRecord) -> dict[str, Any]:
    """`{"spec": {id, ...}, "status": {status, createdAt, updatedAt, conditions, ...}}`; Tide adds
    `status.generation` (grows with each spec change; `observedGeneration` is what the status describes)."""
    state = "STATUS_DELETING" if record.deleting else str(record.status.get("state", "STATUS_CREATING"))
    return {
        "spec": {"id": record.id, **record.spec},
        "status": hosted_status(
            state, record.status, record.created_at, record.updated_at, generation=record.generation
        ),
    }


def deployment_body(record: DeploymentRecord) -> dict[str, Any]:
    return {"deployment": deployment_resource(record)}


def deployments_body(records: Iterable[DeploymentRecord]) -> dict[str, Any]:
    return {"deployments": [deployment_resource(r) for r in records]}


def claim_resource(record: ClaimRecord, allocation: Mapping[str, int]) -> dict[str, Any]:
    """A capacity claim: READY once every instance asked for is allocated, CREATING while some are not."""
    wanted = int((record.spec.get("resources") or {}).get("instanceCount", 0))
    state = "STATUS_READY" if allocation.get("allocatedInstances", 0) >= wanted else "STATUS_CREATING"
    return {
        "spec": {"id": record.id, **record.spec},
        "status": hosted_status(state, dict(allocation), record.created_at, record.updated_at),
    }


def claim_body(record: ClaimRecord, allocation: Mapping[str, int]) -> dict[str, Any]:
    return {"capacityClaim": claim_resource(record, allocation)}


def gateway_resource(record: GatewayRecord, endpoints: Sequence[str]) -> dict[str, Any]:
    """A gateway: READY as soon as it exists (the running gateway process serves every gateway)."""
    return {
        "spec": {"id": record.id, **record.spec},
        "status": hosted_status("STATUS_READY", {}, record.created_at, record.updated_at, endpoints=list(endpoints)),
    }


def gateway_body(record: GatewayRecord, endpoints: Sequence[str]) -> dict[str, Any]:
    return {"gateway": gateway_resource(record, endpoints)}


def key_json(key: KeyRecord) -> dict[str, Any]:
    """An API key as listed: never the key itself, which only the create answer holds."""
    return {
        "id": key.id,
        "gatewayId": key.gateway_id,
        "name": key.name,
        "prefix": key.prefix,
        "createdAt": format_instant(key.created_at),
        **({"requestsPerMinute": key.requests_per_minute} if key.requests_per_minute is not None else {}),
        **({"tokensPerMinute": key.tokens_per_minute} if key.tokens_per_minute is not None else {}),
    }
