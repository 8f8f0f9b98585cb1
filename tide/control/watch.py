"""What the reconcile loop reads from the store: what changed since its last read, and everything now and then.

Each tick asks the change feed (`tide.store.changes`) for the deployments written since the last change
number it saw: one primary-key read when nothing changed, so an idle control plane costs nothing per
deployment. Every `resync_interval_s` (and at the start) it reads every deployment instead, so anything
the feed could not say (a row edited by hand, a write from a version without the feed) is picked up late,
never missed. Works the same with the controller apart from the API (scaled out, one Postgres): the feed
lives in the store, not in a wake-up call.
"""

from __future__ import annotations

from dataclasses import dataclass

from tide.store import DeploymentRecord, Store
from tide.store.changes import GATEWAYS_CHANGE_ID, changes_since, current_seq
from tide.timing import RESYNC_INTERVAL_S


@dataclass(frozen=True)
class StoreDelta:
    records: list[DeploymentRecord]  # the deployments written since the last read (all of them when full)
    full: bool  # a full read: deployments not in `records` are gone
    gone: frozenset[str] = frozenset()  # (not full) changed, then removed from the store
    gateways_changed: bool = False  # a gateway resource or key changed (always, on a full read)


class StoreWatch:
    def __init__(self, store: Store, resync_interval_s: float = RESYNC_INTERVAL_S) -> None:
        self.store = store
        self.resync_interval_s = resync_interval_s
        self._seq: int | None = None  # the change number everything up to has been read
        self._next_resync = 0.0

    def resync_soon(self) -> None:
        self._next_resync = 0.0

    def read(self, now: float) -> StoreDelta:
        """Blocking (store I/O): call it from a thread."""
        if self._seq is None or now >= self._next_resync:
            seq = current_seq(self.store.engine)  # before the list: a write during it is read again next time
            records = self.store.list_deployments()
            self._seq, self._next_resync = seq, now + self.resync_interval_s
            return StoreDelta(records=records, full=True, gateways_changed=True)
        changes = changes_since(self.store.engine, self._seq)
        if not changes.deployment_ids:
            return StoreDelta(records=[], full=False)
        gateways_changed = GATEWAYS_CHANGE_ID in changes.deployment_ids
        ids = [i for i in dict.fromkeys(changes.deployment_ids) if i != GATEWAYS_CHANGE_ID]
        records = self.store.get_deployments(ids) if ids else []
        self._seq = changes.seq
        gone = frozenset(ids) - {r.id for r in records}
        return StoreDelta(records=records, full=False, gone=gone, gateways_changed=gateways_changed)
