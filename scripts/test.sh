#!/usr/bin/env bash
# Sets up, then runs the checks and the test suite: ruff, mypy, pytest (real processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Postgres for the store tests (Debian's package; the tests start their own throwaway cluster on loopback).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) ||
      echo "warning: could not install postgresql; the Postgres store tests will skip" >&2
  else
    echo "warning: postgresql is not installed (apt-get install postgresql); the Postgres store tests will skip" >&2
  fi
fi
# Chromium for the dashboard's browser test (Debian's package; nothing downloads a browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "warning: could not install chromium; the dashboard's browser test will skip" >&2
  else
    echo "warning: chromium is not installed (apt-get install chromium); the dashboard's browser test will skip" >&2
  fi
fi
export HF_HUB_OFFLINE=1 AWS_EC2_METADATA_DISABLED=true
.venv/bin/ruff check tide tests bench
.venv/bin/ruff format --check tide tests bench
.venv/bin/mypy tide tests
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
