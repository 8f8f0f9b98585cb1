#!/usr/bin/env bash
# Sets up, then runs the checks and the test suite: ruff, mypy, pytest (real processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 AWS_EC2_METADATA_DISABLED=true
.venv/bin/ruff check tide tests bench
.venv/bin/ruff format --check tide tests bench
.venv/bin/mypy tide
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
