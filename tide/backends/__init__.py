"""Backends: where replica processes run. `local` (child processes) is the default."""
