#!/usr/bin/env bash
# Sets up, then runs Tide's main job on the embedded default: start it, deploy the tiny model from a local
# bucket, stream a chat answer through the gateway, and watch it scale up, down and to zero.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/tide --data-dir "${TIDE_DATA_DIR:-.tide}" demo "$@"
