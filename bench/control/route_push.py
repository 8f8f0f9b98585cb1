"""The gateway's CPU per route push that adds one model name, at 100 and at 10,000 names (in process, no
sockets; the unchanged names' route and id tuples are the very objects, as the controller pushes them).
A seed of creates pushes about once per create, on the event loop the API shares in `tide up`.

    python bench/control/route_push.py                 # this tree
    cd <other tree> && PYTHONPATH=. python <this tree>/bench/control/route_push.py   # another tree's gateway
"""

from __future__ import annotations

import argparse
import statistics
import time

from tide.gateway import DeploymentRoute, Gateway, RouteTable
from tide.gateway.routes import GatewayRoutes


def push_costs(names: int, pushes: int) -> list[float]:
    routes = {f"m{i:05d}": (DeploymentRoute(f"d{i:05d}", f"m{i:05d}", 100, ()),) for i in range(names)}
    ids = {name: (r[0].deployment_id,) for name, r in routes.items()}
    gateway = Gateway(RouteTable(dict(routes), (GatewayRoutes("default", (), models=dict(ids)),)))
    costs = []
    for j in range(pushes):
        name = f"x{j:05d}"
        routes[name] = (DeploymentRoute(f"e{j:05d}", name, 100, ()),)
        ids[name] = (f"e{j:05d}",)
        table = RouteTable(dict(routes), (GatewayRoutes("default", (), models=dict(ids)),))
        started = time.process_time()
        gateway.set_routes(table)
        costs.append(time.process_time() - started)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--pushes", type=int, default=40)
    args = parser.parse_args()
    base = None
    for size in (int(s) for s in args.sizes.split(",")):
        costs = push_costs(size, args.pushes)
        median = statistics.median(costs)
        base = base or median
        print(
            f"N={size}: a push adding a name: median {median * 1000:.2f} ms CPU "
            f"(range {min(costs) * 1000:.2f}-{max(costs) * 1000:.2f}), x{median / base:.1f} of N={args.sizes.split(',')[0]}"
        )


if __name__ == "__main__":
    main()
