"""The route table kept per deployment, so a change rebuilds only the routes of what changed.

Rebuilding every deployment's route on every tick (and comparing the whole table) is work per deployment
per second; here the controller marks the deployments whose routes may have changed (a spec written, a
replica's phase, a drain) and only those are rebuilt. The table is re-assembled, and pushed, only when one
of them actually changed, and a model name whose routes did not change keeps the very same tuple, so the
gateway (`Gateway.set_routes`) rebuilds only the model names that changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tide.gateway.routes import DeploymentRoute, RouteTable


class RouteCache:
    def __init__(self) -> None:
        self._routes: dict[str, DeploymentRoute] = {}  # deployment id -> its route
        self._groups: dict[str, tuple[DeploymentRoute, ...]] = {}  # model name -> its deployments' routes
        self._members: dict[str, set[str]] = {}  # model name -> the ids routed under it (a regroup reads these)
        self._dirty: set[str] = set()
        self._table: RouteTable | None = None
        self.changed_models: set[str] = set()  # model names whose routes changed, until the caller clears it

    def model_of(self, deployment_id: str) -> str | None:
        """The model name a deployment is routed under (None: no route)."""
        route = self._routes.get(deployment_id)
        return route.model_name if route is not None else None

    def mark(self, deployment_id: str) -> None:
        self._dirty.add(deployment_id)

    @property
    def table(self) -> RouteTable:
        """The table as of the last update (empty before the first)."""
        return self._table if self._table is not None else RouteTable()

    def update(self, build: Callable[[str], DeploymentRoute | None], order: Callable[[str], Any]) -> RouteTable | None:
        """Rebuild the marked deployments' routes (`build` gives None for no route); the new table, each model
        name's routes sorted by `order` (a key by deployment id, e.g. creation time), when any route changed,
        else None. The work is in proportion to what was marked and the model names it touches."""
        models: set[str] = set()
        for deployment_id in self._dirty:
            route = build(deployment_id)
            old = self._routes.get(deployment_id)
            if route == old:
                continue
            if old is not None:
                models.add(old.model_name)
                del self._routes[deployment_id]
                self._members[old.model_name].discard(deployment_id)
            if route is not None:
                models.add(route.model_name)
                self._routes[deployment_id] = route
                self._members.setdefault(route.model_name, set()).add(deployment_id)
        self._dirty.clear()
        self.changed_models |= models
        if not models and self._table is not None:
            return None
        for name in models:
            members = self._members.get(name)
            if members:
                self._groups[name] = tuple(self._routes[i] for i in sorted(members, key=order))
            else:
                self._members.pop(name, None)
                self._groups.pop(name, None)
        self._table = RouteTable(routes=dict(self._groups))
        return self._table
