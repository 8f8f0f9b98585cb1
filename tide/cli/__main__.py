"""`python -m tide.cli`: the `tide` command (what the tests and `tide demo` start as subprocesses)."""

from __future__ import annotations

import os

from tide.cli import main

os.environ.setdefault("HF_HUB_OFFLINE", "1")
main()
