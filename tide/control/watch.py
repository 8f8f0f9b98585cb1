"""What the reconcile loop reads from the store: what changed since its last read, and everything now and then.

Each tick asks the change feed (`tide.store.changes`) for the deployments written since the last change
number it saw: one primary-key read when nothing changed, so an idle control plane costs nothing per
deployment. At the start it reads every deployment; then every `resync_interval_s` it reads every
deployment's version (generation, update time, delete mark and a hash of the stored spec, nothing decoded)
and re-reads the ones that differ from what it last saw, so anything the feed could not say (a row edited
by hand, a write from a version without the feed) is picked up late, never missed, and a resync at 10,000
idle deployments decodes none of them. Works the same with the controller apart from the API (scaled out, one Postgres): the feed
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
    present: frozenset[str] | None = None  # (a resync) every deployment in the store: the others are gone


class StoreWatch:
    def __init__(self, store: Store, resync_interval_s: float = RESYNC_INTERVAL_S) -> None:
        self.store = store
        self.resync_interval_s = resync_interval_s
        self._seq: int | None = None  # the change number everything up to has been read
        self._next_resync = 0.0
        self._versions: dict[str, tuple[int, float, bool, int]] = {}  # as of the last resync, less what changed since

    def resync_soon(self) -> None:
        self._next_resync = 0.0

    def read(self, now: float) -> StoreDelta:
        """Blocking (store I/O): call it from a thread."""
        if self._seq is None or now >= self._next_resync:
            seq = current_seq(self.store.engine)  # before the reads: a write during them is read again next time
            versions = self.store.deployment_versions()
            first = self._seq is None
            self._seq, self._next_resync = seq, now + self.resync_interval_s
            if first:
                self._versions = versions
                return StoreDelta(records=self.store.list_deployments(), full=True, gateways_changed=True)
            stale = [i for i, version in versions.items() if self._versions.get(i) != version]
            self._versions = versions
            records = sorted(self.store.get_deployments(stale), key=lambda r: (r.created_at, r.id)) if stale else []
            return StoreDelta(records=records, full=False, gateways_changed=True, present=frozenset(versions))
        changes = changes_since(self.store.engine, self._seq)
        if not changes.deployment_ids:
            return StoreDelta(records=[], full=False)
        gateways_changed = GATEWAYS_CHANGE_ID in changes.deployment_ids
        ids = [i for i in dict.fromkeys(changes.deployment_ids) if i != GATEWAYS_CHANGE_ID]
        records = self.store.get_deployments(ids) if ids else []
        self._seq = changes.seq
        for deployment_id in ids:  # its version is not known here: the next resync reads it once more
            self._versions.pop(deployment_id, None)
        gone = frozenset(ids) - {r.id for r in records}
        return StoreDelta(records=records, full=False, gone=gone, gateways_changed=gateways_changed)
