#!/usr/bin/env bash
# The fast tier while working: pure code and in-process tests (no engine processes, no `tide up`, no
# clusters): 879 tests in 74 s on 2 quiet cores. Process tiers alone: `.venv/bin/pytest -m e2e` (or scaleout, ray, vllm, engines).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 AWS_EC2_METADATA_DISABLED=true
exec .venv/bin/pytest -q -p no:cacheprovider -m fast "$@"
