"""Scheduling (pure): the inventory of instances, capacity claims, replica placement, usage metering.

No I/O and no clock: `now` is always a parameter. See docs/SCHEDULING.md for the rules in words.
"""

from tide.scheduling.claims import (
    CAPACITY_TYPE_CUSTOMER,
    CAPACITY_TYPE_SERVERLESS,
    CAPACITY_TYPES,
    Claim,
    ClaimSpec,
    ClaimStatus,
    assign_claims,
    claim_status,
    validate_claim,
)
from tide.scheduling.decisions import DeploymentRequest, Pending, Placement, Preemption, ScheduleResult
from tide.scheduling.declared import CPU_LOCAL_TYPE, GPU_LOCAL_TYPE, declared_inventory, local_inventory
from tide.scheduling.inventory import (
    CAPACITY_CLASSES,
    ON_DEMAND,
    RESERVED,
    CapacityClass,
    Instance,
    InstanceType,
    Inventory,
    parse_capacity_class,
)
from tide.scheduling.scheduler import schedule
from tide.scheduling.usage import ReplicaUsage, RunInterval, UsageReport, billed_minutes, gpu_minutes

__all__ = [
    "CAPACITY_CLASSES",
    "CAPACITY_TYPES",
    "CAPACITY_TYPE_CUSTOMER",
    "CAPACITY_TYPE_SERVERLESS",
    "CPU_LOCAL_TYPE",
    "GPU_LOCAL_TYPE",
    "ON_DEMAND",
    "RESERVED",
    "CapacityClass",
    "Claim",
    "ClaimSpec",
    "ClaimStatus",
    "DeploymentRequest",
    "Instance",
    "InstanceType",
    "Inventory",
    "Pending",
    "Placement",
    "Preemption",
    "ReplicaUsage",
    "RunInterval",
    "ScheduleResult",
    "UsageReport",
    "assign_claims",
    "billed_minutes",
    "claim_status",
    "declared_inventory",
    "gpu_minutes",
    "local_inventory",
    "parse_capacity_class",
    "schedule",
    "validate_claim",
]
