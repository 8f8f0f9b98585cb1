"""The `tide` command line: run the servers, manage deployments, build the demo model, move weights.

`servers.py` holds the commands that start servers (`up`, `controller`, `api`, `gateway`); the client
commands (`resources.py`, `deployments.py`, `claims.py`, `demo.py`) talk to the management API through
the SDK (`tide.sdk`), set up by `client.py`, the one module they share; `weights.py` moves weights. This module attaches them all to the `tide` group (`root.py`).
"""

from __future__ import annotations

from tide.cli import claims, demo, deployments, model, resources, servers, weights
from tide.cli.root import main

__all__ = ["main"]

for _command in (servers.up, servers.controller, servers.api, servers.gateway):
    main.add_command(_command)
for _command in (resources.apply, deployments.get, resources.delete, deployments.logs, deployments.wait_for):
    main.add_command(_command)
main.add_command(deployments.keys)
main.add_command(model.model)
main.add_command(demo.demo_command, "demo")
main.add_command(weights.weights_group, "weights")
main.add_command(claims.usage_command, "usage")
deployments.get.add_command(claims.get_claims_command, "claims")
deployments.get.add_command(claims.get_claim_command, "claim")


def _register_optional_commands() -> None:
    try:
        from tide.sim.cli import sim_command
    except ImportError:
        return
    main.add_command(sim_command, "sim")


_register_optional_commands()
