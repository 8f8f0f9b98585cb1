"""The `tide` command line: run the servers, manage deployments, build the demo model, move weights.

`servers.py` holds the commands that start servers (`up`, `controller`, `api`, `gateway`); the client
commands (`deployments.py`, `claims.py`, `weights.py`, `demo.py`) talk to the management API through
`client.py`, the one module they share. This module attaches them all to the `tide` group (`root.py`).
"""

from __future__ import annotations

from tide.cli import claims, demo, deployments, model, servers, weights
from tide.cli.root import main

__all__ = ["main"]

for _command in (servers.up, servers.controller, servers.api, servers.gateway):
    main.add_command(_command)
for _command in (deployments.apply, deployments.get, deployments.delete, deployments.logs, deployments.wait_for):
    main.add_command(_command)
main.add_command(deployments.keys)
main.add_command(model.model)
main.add_command(demo.demo_command, "demo")
main.add_command(weights.weights_group, "weights")
main.add_command(claims.usage_command, "usage")
deployments.get.add_command(claims.get_claims_command, "claims")


def _register_optional_commands() -> None:
    try:
        from tide.sim.cli import sim_command
    except ImportError:
        return
    main.add_command(sim_command, "sim")


_register_optional_commands()
