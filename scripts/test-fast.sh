#!/usr/bin/env bash
# The fast tier while working: pure code and in-process tests (no engine processes, no `tide up`, no
# clusters), spread over every core with pytest-xdist (TIDE_TEST_WORKERS=1 runs it in one process).
# Process tiers alone: `.venv/bin/pytest -m e2e` (or scaleout, ray, vllm, engines, services).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 AWS_EC2_METADATA_DISABLED=true
# This tier is run again and again while working: let Python keep the compiled modules (and pytest its
# rewritten test modules) between runs, which halves the time to collect, even where the shell says not to.
unset PYTHONDONTWRITEBYTECODE
workers=${TIDE_TEST_WORKERS:-auto}
if [ "$workers" = 1 ]; then
  exec .venv/bin/pytest -q -p no:cacheprovider -m fast "$@"
fi
exec .venv/bin/pytest -q -p no:cacheprovider -m fast -n "$workers" "$@"
