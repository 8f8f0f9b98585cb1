"""The route table kept per deployment, so a change rebuilds only the routes of what changed.

Rebuilding every deployment's route on every tick (and comparing the whole table) is work per deployment
per second; here the controller marks the deployments whose routes may have changed (a spec written, a
replica's phase, a drain) and only those are rebuilt. The table is re-assembled, and pushed, only when one
of them actually changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tide.gateway.routes import DeploymentRoute, RouteTable


class RouteCache:
    def __init__(self) -> None:
        self._routes: dict[str, DeploymentRoute] = {}
        self._dirty: set[str] = set()
        self._table: RouteTable | None = None

    def mark(self, deployment_id: str) -> None:
        self._dirty.add(deployment_id)

    def update(self, build: Callable[[str], DeploymentRoute | None], order: Iterable[str]) -> RouteTable | None:
        """Rebuild the marked deployments' routes (`build` gives None for no route); the new table, in
        `order` (deployment ids), when any route changed, else None."""
        changed = self._table is None
        for deployment_id in self._dirty:
            route = build(deployment_id)
            if route != self._routes.get(deployment_id):
                changed = True
                if route is None:
                    del self._routes[deployment_id]
                else:
                    self._routes[deployment_id] = route
        self._dirty.clear()
        if not changed:
            return None
        grouped: dict[str, list[DeploymentRoute]] = {}
        for deployment_id in order:
            route = self._routes.get(deployment_id)
            if route is not None:
                grouped.setdefault(route.model_name, []).append(route)
        self._table = RouteTable(routes={name: tuple(routes) for name, routes in grouped.items()})
        return self._table
