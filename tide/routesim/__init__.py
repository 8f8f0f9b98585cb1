"""Routing simulator: replays a block-hash trace (Mooncake format) against N replicas with an LRU prefix
cache each and a service-time model, and compares routing policies (`python -m tide.routesim`). Pure."""
