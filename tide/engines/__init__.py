"""Engines: how a replica serves (built-in torch engine, vllm adapter, external endpoints)."""
