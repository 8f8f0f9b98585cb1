"""What `tide api` (the management API alone) validates against: the inventory the leader published.

The API process has no backend, so it cannot see a Ray cluster's nodes; the acting controller publishes
its inventory (`tide.store.published`). Until one has, the API uses the inventory it was given
(`--inventory`, or this machine). The document is read by a background thread every `refresh_s`, never on
a request: a slow or unreachable database delays the view, not the API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tide.scheduling import Inventory
from tide.scheduling.inventory_json import inventory_from_json
from tide.spec import Catalog
from tide.store.published import INVENTORY_KEY, PublishedState

log = logging.getLogger(__name__)

CatalogFor = Callable[[Inventory, "tuple[str, ...] | None"], Catalog]


class PublishedView:
    def __init__(
        self, published: PublishedState, fallback: Inventory, catalog_for: CatalogFor, *, refresh_s: float = 2.0
    ) -> None:
        self._published = published
        self._catalog_for = catalog_for
        self._refresh_s = refresh_s
        self._fallback = (fallback, catalog_for(fallback, None))
        self._current = self._fallback
        self._source: object = None  # the document the current view was built from
        self._rejected: object = None  # a malformed document already logged

    def inventory(self) -> Inventory:
        return self._current[0]

    def catalog(self) -> Catalog:
        return self._current[1]

    def start(self) -> threading.Event:
        """Refresh now, then in a daemon thread every `refresh_s`; set the returned event to stop it."""
        stop = threading.Event()
        self.refresh()

        def loop() -> None:
            while not stop.wait(self._refresh_s):
                self.refresh()

        threading.Thread(target=loop, name="published-inventory", daemon=True).start()
        return stop

    def refresh(self) -> None:
        try:
            found = self._published.read(INVENTORY_KEY)
        except Exception:
            log.exception("reading the published inventory failed; keeping the last one")
            return
        if found is None:
            self._current, self._source = self._fallback, None
            return
        document = found[0]
        if document == self._source or document == self._rejected:
            return
        try:
            inventory = inventory_from_json(document["inventory"])
            versions = tuple(str(v) for v in document.get("vllmVersions", []))
        except (KeyError, TypeError, ValueError) as error:
            log.error("the published inventory is malformed (%s); keeping the last one", error)
            self._rejected = document
            return
        self._current = (inventory, self._catalog_for(inventory, versions))  # one assignment: readers see old or new
        self._source = document
