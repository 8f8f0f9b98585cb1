"""How a deployment picks a replica (`traffic.routing`, docs/ROUTING.md): fewest in flight, or where the
prompt's prefix is most likely cached, weighed against load. The spec validates the name; the gateway
runs the policy."""

from __future__ import annotations

LEAST_LOADED = "least-loaded"
PREFIX_AWARE = "prefix-aware"
ROUTING_POLICIES = (LEAST_LOADED, PREFIX_AWARE)
