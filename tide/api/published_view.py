"""What `tide api` (the management API alone) validates against: the inventory the leader published.

The API process has no backend, so it cannot see a Ray cluster's nodes or the vLLM versions on them;
the acting controller publishes both (`tide.store.published`). Until one has, or if the document cannot
be read, the API falls back to the inventory it was given (`--inventory`, or this machine).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tide.scheduling import Inventory
from tide.scheduling.inventory_json import inventory_from_json
from tide.spec import Catalog
from tide.store.published import INVENTORY_KEY, PublishedState

log = logging.getLogger(__name__)

CatalogFor = Callable[[Inventory, "tuple[str, ...] | None"], Catalog]


class PublishedView:
    def __init__(
        self,
        published: PublishedState,
        fallback: Inventory,
        catalog_for: CatalogFor,
        *,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._published = published
        self._catalog_for = catalog_for
        self._refresh_s = refresh_s
        self._clock = clock
        self._fallback = (fallback, catalog_for(fallback, None))
        self._current = self._fallback
        self._source: object = None  # the document the current view was built from
        self._read_at: float | None = None

    def inventory(self) -> Inventory:
        return self._view()[0]

    def catalog(self) -> Catalog:
        return self._view()[1]

    def _view(self) -> tuple[Inventory, Catalog]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            self._read_at = now
            self._refresh()
        return self._current

    def _refresh(self) -> None:
        try:
            found = self._published.read(INVENTORY_KEY)
        except Exception:
            log.exception("reading the published inventory failed; keeping the last one")
            return
        if found is None:
            self._current = self._fallback
            return
        document = found[0]
        if document == self._source:
            return
        try:
            inventory = inventory_from_json(document["inventory"])
            versions = tuple(str(v) for v in document.get("vllmVersions", []))
        except (KeyError, TypeError, ValueError) as error:
            log.error("the published inventory is malformed (%s); keeping the last one", error)
            return
        self._current = (inventory, self._catalog_for(inventory, versions))
        self._source = document
