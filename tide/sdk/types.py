"""The management API's JSON as typed dictionaries: what the SDK's methods return (API.md).

They mirror the wire format exactly (camelCase keys, the `{"deployment": {spec, status}}` envelope
unwrapped to `{spec, status}`), so a result can be printed, dumped to YAML, edited and sent back. Keys
the API may leave out are `NotRequired`; Tide adds status fields over time, so readers should use `.get`
for anything not listed here.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Condition(TypedDict):
    type: str
    status: str
    lastUpdateTime: str | None  # RFC 3339
    reason: str
    message: str
    zone: str


class ModelSource(TypedDict):
    name: str
    bucket: str
    path: str


class Runtime(TypedDict):
    engine: str
    version: NotRequired[str]
    engineConfig: NotRequired[dict[str, str]]


class DeploymentSpec(TypedDict):
    id: str
    name: str
    model: ModelSource
    runtime: Runtime
    gatewayIds: NotRequired[list[str]]
    resources: NotRequired[dict[str, Any]]  # instanceType, gpuCount
    autoscaling: NotRequired[dict[str, Any]]  # min, max, concurrency, priority, profile, ...
    traffic: NotRequired[dict[str, Any]]  # weight
    disabled: NotRequired[bool]


class ReplicaLoad(TypedDict):
    runningRequests: int
    waitingRequests: int
    kvCacheUsage: NotRequired[float]
    prefixCacheHitRate: NotRequired[float]


class ReplicaStatus(TypedDict):
    """One replica. `phaseTimes` maps each phase it entered (`waiting_for_capacity`,
    `downloading_weights`, `engine_load`, `ready`, ...) to when it began, in epoch seconds."""

    id: str
    phase: str
    phaseTimes: dict[str, float]
    url: NotRequired[str]
    message: NotRequired[str]
    progress: NotRequired[dict[str, Any]]
    exitCode: NotRequired[int]
    pid: NotRequired[int]
    draining: NotRequired[bool]
    load: NotRequired[ReplicaLoad]
    instanceId: NotRequired[str]  # where the scheduler placed it
    instanceType: NotRequired[str]
    zone: NotRequired[str]
    gpuIds: NotRequired[list[int]]  # device indices, on a real GPU instance
    gpuCount: NotRequired[int]  # on a GPU instance type (CPU slots are not counted)


class DeploymentStatus(TypedDict):
    status: str  # STATUS_CREATING, STATUS_READY, STATUS_UPDATING, STATUS_DELETING, STATUS_ERROR, STATUS_FAILED
    createdAt: str | None
    updatedAt: str | None
    conditions: list[Condition]
    generation: int
    observedGeneration: NotRequired[int]
    readyReplicas: NotRequired[int]
    desiredReplicas: NotRequired[int]
    parkedReplicas: NotRequired[int]
    replicas: NotRequired[list[ReplicaStatus]]
    engineLoad: NotRequired[ReplicaLoad]
    lastScalingDecision: NotRequired[dict[str, Any]]


class Deployment(TypedDict):
    spec: DeploymentSpec
    status: DeploymentStatus


class DeploymentPage(TypedDict):
    deployments: list[Deployment]
    nextPageToken: NotRequired[str]


class DeploymentLogs(TypedDict):
    """Each replica's text, and where to continue (`offsets`, for `logs(..., after=offsets)`)."""

    id: str
    replicas: dict[str, str]
    offsets: dict[str, int]


class ClaimResources(TypedDict):
    instanceId: str
    instanceCount: int
    capacityType: NotRequired[str]  # CAPACITY_TYPE_SERVERLESS or CAPACITY_TYPE_CUSTOMER
    zones: NotRequired[list[str]]


class CapacityClaimSpec(TypedDict):
    id: str
    resources: ClaimResources
    name: NotRequired[str]


class CapacityClaimStatus(TypedDict):
    status: str  # STATUS_READY once every instance is allocated, else STATUS_CREATING
    createdAt: str | None
    updatedAt: str | None
    conditions: list[Condition]
    allocatedInstances: int
    pendingInstances: int


class CapacityClaim(TypedDict):
    spec: CapacityClaimSpec
    status: CapacityClaimStatus


class CapacityClaimPage(TypedDict):
    capacityClaims: list[CapacityClaim]
    nextPageToken: NotRequired[str]


class GatewayStatus(TypedDict):
    status: str
    createdAt: str | None
    updatedAt: str | None
    conditions: list[Condition]
    endpoints: list[str]  # the base URLs clients use


class Gateway(TypedDict):
    spec: dict[str, Any]  # id, name, zones, one auth type, one routing strategy (API.md: Gateways)
    status: GatewayStatus


class ApiKey(TypedDict):
    """A gateway's API key as listed: never the key itself."""

    id: str
    gatewayId: str
    name: str
    prefix: str
    createdAt: str
    requestsPerMinute: NotRequired[int]
    tokensPerMinute: NotRequired[int]


class CreatedKey(TypedDict):
    """A new key: `key` is in this answer only (Tide keeps its hash)."""

    apiKey: ApiKey
    key: str


class ReplicaUsage(TypedDict):
    replicaId: str
    minutes: int
    gpuMinutes: int
    parked: NotRequired[bool]


class DeploymentUsage(TypedDict):
    deploymentId: str
    gpuMinutes: int
    parkedMinutes: int
    replicas: list[ReplicaUsage]


class KeyUsage(TypedDict):
    keyId: str  # "management-token" on coreWeaveAuth gateways, "none" without a key of the gateway's own
    requests: int
    promptTokens: int
    completionTokens: int


class GatewayUsage(TypedDict):
    """Since the gateways started (not windowed by start/end); its keys add up to its totals."""

    gatewayId: str
    requests: int
    promptTokens: int
    completionTokens: int
    keys: list[KeyUsage]


class UsageReport(TypedDict):
    start: float  # epoch seconds
    end: float
    totalGpuMinutes: int
    deployments: list[DeploymentUsage]
    gateways: NotRequired[list[GatewayUsage]]
