#!/usr/bin/env bash
# Gateway CPU per proxied request, this tree against a baseline tree, interleaved on the same machine in the
# same minutes: the steadier figure on a shared machine (req/s swings with other load; CPU per request
# much less). Each round starts `python -m tide.gateway` with tiny.yaml from one tree (pinned to CPU 0),
# drives it with wrk at c=64 for DUR s (stub and wrk on CPU 1), and divides the gateway process's CPU time
# (utime+stime from /proc) by the requests served. Prints every round, medians, ranges and the ratio.
# Usage: BASE=/path/to/baseline/checkout bench/gateway/cpu_per_request.sh     env: ROUNDS (4), DUR (5), PYTHON
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$REPO/../shared/bench/peers}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
BASE=${BASE:?set BASE to the checkout to compare against (e.g. a git worktree of main)}
ROUNDS=${ROUNDS:-4}
DUR=${DUR:-5}
URL=http://127.0.0.1:8080/v1/chat/completions
RESULTS=$(mktemp)
mkdir -p /tmp/peers
taskset -c 1 nginx -c "$PEERS/stub.conf" &
STUB=$!
trap 'kill $STUB 2>/dev/null; rm -f "$RESULTS"' EXIT
sleep 1
TCK=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
  for tree in "$BASE" "$REPO"; do
    (cd "$tree" && exec env -u PYTHONPATH taskset -c 0 "$PYTHON" -m tide.gateway --port 8080 --routes "$HERE/tiny.yaml") \
      >/tmp/peers/cpu-gateway.log 2>&1 &
    GW=$!
    for _ in $(seq 1 100); do
      curl -sf -o /dev/null -X POST -H 'content-type: application/json' --data @"$PEERS/body.json" "$URL" && break
      sleep 0.2
    done
    taskset -c 1 wrk -t1 -c8 -d1s -s "$PEERS/post.lua" "$URL" >/dev/null  # warm up
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$GW/stat")
    out=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}"s -s "$PEERS/post.lua" "$URL")
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$GW/stat")
    kill "$GW"; wait "$GW" 2>/dev/null || true
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    label=$([ "$tree" = "$BASE" ] && echo base || echo this)
    us=$(awk -v t=$(( (u1 + s1) - (u0 + s0) )) -v hz="$TCK" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    echo "$label $us $rps" | tee -a "$RESULTS"
  done
done
"$PYTHON" - "$RESULTS" <<'PY'
import statistics
import sys

rows: dict[str, list[tuple[float, float]]] = {}
for line in open(sys.argv[1]):
    label, us, rps = line.split()
    rows.setdefault(label, []).append((float(us), float(rps)))
for label, values in rows.items():
    us = [u for u, _ in values]
    rps = [r for _, r in values]
    print(f"{label}: CPU/request median {statistics.median(us):.1f} us (range {min(us):.1f}-{max(us):.1f}), "
          f"c64 req/s median {statistics.median(rps):.0f} (range {min(rps):.0f}-{max(rps):.0f})")
base, this = (statistics.median(u for u, _ in rows[k]) for k in ("base", "this"))
print(f"this / base CPU per request: x{this / base:.2f}")
PY
