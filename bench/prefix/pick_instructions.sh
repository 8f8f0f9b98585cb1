#!/usr/bin/env bash
# The gateway's routing work per request counted in instructions, in process (bench/prefix/pick_cost.py
# under valgrind's callgrind: the count for 2N requests minus the count for N, divided by N): least-loaded's
# pick vs prefix-aware's naming and pick, on the gateway bench's bodies. Deterministic and independent of
# the machine's load, unlike the gateway's own figures (gateway_overhead.sh, gateway_instructions.sh),
# which also move with the event loop's batching.
# Usage: bench/prefix/pick_instructions.sh    env: N (4000), PYTHON, TREE (this one)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
N=${N:-4000}
TREE=$(cd "${TREE:-$REPO}" && pwd)
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
count() {  # instructions of pick_cost.py POLICY REQUESTS
  (cd "$TREE" && PYTHONPATH="$TREE" PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg" \
    "$PYTHON" "$HERE/pick_cost.py" "$1" "$2") >/dev/null 2>&1
  callgrind_annotate "$WORK/cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
declare -A PER_REQUEST
for policy in least-loaded prefix-aware; do
  PER_REQUEST[$policy]=$((($(count "$policy" $((2 * N))) - $(count "$policy" "$N")) / N))
  printf '%-14s %8s instructions per request (routing work only)\n' "$policy" "${PER_REQUEST[$policy]}"
done
echo "prefix-aware adds $((PER_REQUEST[prefix-aware] - PER_REQUEST[least-loaded])) instructions per request"
