"""A deployment at rest: no replicas, none wanted, nothing new to say. The reconcile loop skips it.

Its autoscaler still decides every tick (that is how a request at zero wakes it), but applying a decision of
0 to a deployment with 0 replicas and writing the same status again is work per deployment per second
for nothing. `rest_key` is what its status is made of, besides the time of the autoscaler's last
(unchanged) decision: while it stays the same, there is nothing to apply and nothing to write.
"""

from __future__ import annotations

from tide.control.runtime import DeploymentRuntime


def rest_key(runtime: DeploymentRuntime, desired: int) -> tuple[object, ...] | None:
    """None while the deployment has (or wants) anything running; otherwise what would change its status."""
    if desired or runtime.replicas or runtime.draining or runtime.awaiting_gpus or runtime.placements:
        return None
    record, scaler = runtime.record, runtime.scaler
    if record.deleting:
        return None
    latest = scaler.history[0] if scaler is not None and scaler.history else None
    return (
        record.generation,
        record.updated_at,
        runtime.spec_error,
        runtime.failure,
        runtime.crash_message,
        runtime.lost_message,
        runtime.pending_message,
        runtime.consecutive_crashes,
        runtime.ever_ready_generation,
        scaler.current if scaler is not None else None,
        scaler.last.mode if scaler is not None and scaler.last is not None else None,
        latest,
    )
