#!/usr/bin/env bash
# Gateway cost of prefix-aware routing counted in instructions (valgrind's callgrind): deterministic, so it
# does not follow what else runs on the machine, unlike gateway_overhead.sh's CPU time. The same setup as
# gateway_overhead.sh (4 endpoints on one nginx stub, ~8 KB chat prompts from long_prompts.lua, wrk at
# concurrency 64); the gateway runs under callgrind (about 50x slower), is warmed up for 3 s, then its
# counters are zeroed and read after DUR seconds of load. Prints instructions per request per policy and
# the ratio. STUB_CONF=bench/prefix/stub_cached.conf: a stub reporting cached prompt tokens, so the cache
# feedback runs (as in gateway_overhead.sh).
# Usage: bench/prefix/gateway_instructions.sh   env: DUR (8 s), PYTHON, PEERS, TREE (this one), STUB_CONF, KEEP (a folder for the callgrind files)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$REPO/../shared/bench/peers}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
DUR=${DUR:-8}
TREE=$(cd "${TREE:-$REPO}" && pwd)  # the Tide tree whose gateway runs (python -m imports from the cwd first)
STUB_PORT=18101
GW_PORT=18191
command -v valgrind >/dev/null && command -v nginx >/dev/null && command -v wrk >/dev/null || {
  apt-get update -qq && apt-get install -y -qq valgrind nginx-light wrk curl >/dev/null; }
WORK=$(mktemp -d)
sed -e "s/127.0.0.1:18000/127.0.0.1:$STUB_PORT/" -e "s#/tmp/peers/#$WORK/#g" "${STUB_CONF:-$PEERS/stub.conf}" >"$WORK/stub.conf"
nginx -c "$WORK/stub.conf" & STUB=$!
trap 'kill $STUB 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 1
declare -A PER_REQUEST
for policy in least-loaded prefix-aware; do
  cat >"$WORK/$policy.yaml" <<YAML
models:
  tiny:
    - deployment: tiny
      routing: $policy
      endpoints: [http://127.0.0.1:$STUB_PORT/v1, http://127.0.0.1:$STUB_PORT/v1, http://127.0.0.1:$STUB_PORT/v1, http://127.0.0.1:$STUB_PORT/v1]
YAML
  (cd "$TREE" && PYTHONPATH="$TREE" PYTHONHASHSEED=0 exec valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$policy" \
    "$PYTHON" -m tide.gateway --port $GW_PORT --routes "$WORK/$policy.yaml") >"$WORK/gw.log" 2>&1 & GW=$!
  for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:$GW_PORT/health && break; sleep 0.2; done
  wrk -t1 -c64 --timeout 60s -d3s -s "$HERE/long_prompts.lua" http://127.0.0.1:$GW_PORT/v1/chat/completions >/dev/null
  callgrind_control -z $GW >/dev/null
  wrk -t1 -c64 --timeout 60s -d"${DUR}s" -s "$HERE/long_prompts.lua" http://127.0.0.1:$GW_PORT/v1/chat/completions >"$WORK/wrk.out"
  callgrind_control -d $GW >/dev/null
  kill $GW; wait $GW 2>/dev/null || true
  requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  instructions=$(callgrind_annotate "$WORK/cg.$policy.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  PER_REQUEST[$policy]=$((instructions / requests))
  printf '%-14s %8s requests %10s instructions per request\n' "$policy" "$requests" "${PER_REQUEST[$policy]}"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK/cg.$policy.1" "$KEEP/cg.$policy"; fi
done
awk -v ll="${PER_REQUEST[least-loaded]}" -v pa="${PER_REQUEST[prefix-aware]}" \
  'BEGIN {printf "prefix-aware / least-loaded: x%.3f (%+d instructions per request)\n", pa / ll, pa - ll}'
