"""Tide's Python SDK: a typed client of the management API, synchronous (`Client`) and asynchronous
(`AsyncClient`), that the `tide` CLI itself uses (docs/SDK.md).

    from tide.sdk import Client
    with Client("http://127.0.0.1:8081", token) as tide:
        tide.deployments.create({"name": "tiny-chat", "model": {...}, "runtime": {"engine": "builtin"}})
        tide.deployments.wait("tiny-chat")

Results are the API's JSON (`tide.sdk.types`); every failure is a `TideError` (status, code, message,
field). The SDK talks HTTP only: it imports nothing of the server.
"""

from __future__ import annotations

from tide.sdk.aio import AsyncClient
from tide.sdk.client import Client
from tide.sdk.errors import TideError
from tide.sdk.types import (
    ApiKey,
    CapacityClaim,
    CapacityClaimPage,
    CreatedKey,
    Deployment,
    DeploymentLogs,
    DeploymentPage,
    Gateway,
    ReplicaStatus,
    UsageReport,
)

__all__ = [
    "ApiKey",
    "AsyncClient",
    "CapacityClaim",
    "CapacityClaimPage",
    "Client",
    "CreatedKey",
    "Deployment",
    "DeploymentLogs",
    "DeploymentPage",
    "Gateway",
    "ReplicaStatus",
    "TideError",
    "UsageReport",
]
