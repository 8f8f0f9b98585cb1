"""What exchanges report about replicas, and what the gateway keeps of it.

`ReplicaBook` keeps the replicas the routing table dropped while requests were still in flight on them
(draining: counted in load snapshots until their last request ends), marks a replica that refused,
dropped or hung a request to be avoided for `unhealthy_s` while others have room, and tells the
controller (`on_replica_failure`). The queue of a deployment learns of freed replicas from the exchange
itself (activator.py); this book never calls back into the gateway.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from tide.gateway.tasks import BackgroundTasks, ReplicaCallback

if TYPE_CHECKING:
    from tide.gateway.balancing import ReplicaState

log = logging.getLogger(__name__)


class ReplicaBook:
    def __init__(self, tasks: BackgroundTasks, unhealthy_s: float, on_failure: ReplicaCallback | None) -> None:
        self.tasks = tasks
        self.unhealthy_s = unhealthy_s
        self.on_failure = on_failure
        self.draining: dict[str, ReplicaState] = {}  # dropped from the table, requests still in flight
        self.upstream_timeouts = 0  # requests cut off by the upstream idle timeout

    def drained(self, replica: ReplicaState) -> None:
        """A request on a replica no longer in the table ended: forget the replica after its last one."""
        if replica.in_flight == 0:
            self.draining.pop(replica.replica_id, None)

    def failed(self, replica: ReplicaState) -> None:
        """The replica refused or dropped a request before answering."""
        replica.unhealthy_until = time.monotonic() + self.unhealthy_s
        replica.prefix_index.clear()  # it may be restarting: its cache starts empty
        log.warning("replica %s (%s) failed before responding", replica.replica_id, replica.base_url)
        self.tasks.notify(self.on_failure, replica.replica_id)

    def timed_out(self, replica: ReplicaState, timeout_s: float) -> None:
        """A hung replica: avoided for `unhealthy_s` like one that dropped a request (while others have
        room), and the controller is told, as for a failure."""
        self.upstream_timeouts += 1
        replica.unhealthy_until = time.monotonic() + self.unhealthy_s
        log.warning(
            "replica %s (%s) sent nothing for %gs; request cancelled (upstream idle timeout)",
            replica.replica_id, replica.base_url, timeout_s,
        )  # fmt: skip
        self.tasks.notify(self.on_failure, replica.replica_id)
