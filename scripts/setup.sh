#!/usr/bin/env bash
# Creates .venv and installs Tide with its test tools. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.tide-installed
# setup.py and the C source: the gateway's optional extension (tide/gateway/_prefixnames.c) is built here.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
  || [ tide/gateway/_prefixnames.c -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # torch first and pinned: this machine has the CPU wheel locally; a looser spec would pull CUDA builds.
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e '.[dev,ray]'
  touch "$stamp"
fi
# The dashboard's chart library, from the npm registry (pinned; the dashboard works without it).
./scripts/vendor-ui.sh
