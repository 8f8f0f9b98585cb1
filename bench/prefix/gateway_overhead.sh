#!/usr/bin/env bash
# Gateway cost of prefix-aware routing: the same gateway, routes and load, least-loaded vs prefix-aware.
# One nginx stub model server (shared/bench/peers/stub.conf) stands for 4 replicas; wrk sends ~8 KB chat
# prompts (long_prompts.lua: 8 shared documents) at concurrency 64. The gateway gets CPU 0; the stub and
# wrk share CPU 1. The two policies alternate RUNS times; prints req/s and gateway CPU us per request
# (from /proc/PID/stat), wrk's latency p50 and p99, and the load average for each run, then medians and
# the ratio prefix-aware / least-loaded. Each run pair gets its own fixed PYTHONHASHSEED (the run number),
# the same for both policies.
# PAUSE_MS=7: paced instead of flat out: each of the 64 connections waits 7 ms before each request, so both
# policies get the same ~7k req/s and the CPU per request compares the gateway's own work. Flat out, the
# gateway's CPU per request also holds waking wrk and nginx on the other core, which costs more (on a VM,
# an interrupt to the other vCPU per wake-up) the more often they sleep, i.e. the slower the gateway:
# small differences in the gateway's work come out several times larger (docs/ROUTING.md, "Gateway cost").
# STUB_CONF=bench/prefix/stub_cached.conf: a stub that reports cached prompt tokens as vLLM does, so the
# prefix-aware gateway's cache feedback runs on the responses (the default stub reports none: it is off).
# Usage: bench/prefix/gateway_overhead.sh     env: RUNS (3), DUR (4 s), PAUSE_MS (none), STUB_CONF, PYTHON, PEERS, TREE
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$REPO/../shared/bench/peers}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
RUNS=${RUNS:-3}
DUR=${DUR:-4}
TREE=$(cd "${TREE:-$REPO}" && pwd)  # the Tide tree whose gateway runs (python -m imports from the cwd first)
command -v nginx >/dev/null && command -v wrk >/dev/null || {
  apt-get update -qq && apt-get install -y -qq nginx-light wrk curl >/dev/null; }
WORK=$(mktemp -d)
mkdir -p /tmp/peers
trap 'kill $STUB 2>/dev/null; rm -rf "$WORK"' EXIT
for policy in least-loaded prefix-aware; do
  cat >"$WORK/$policy.yaml" <<YAML
models:
  tiny:
    - deployment: tiny
      routing: $policy
      endpoints: [http://127.0.0.1:18000/v1, http://127.0.0.1:18000/v1, http://127.0.0.1:18000/v1, http://127.0.0.1:18000/v1]
YAML
done
taskset -c 1 nginx -c "$(realpath "${STUB_CONF:-$PEERS/stub.conf}")" & STUB=$!
sleep 1
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }  # user, system
RESULTS="$WORK/results"
export PAUSE_MS=${PAUSE_MS:-}  # read by long_prompts.lua
if [ -n "$PAUSE_MS" ]; then echo "concurrency 64, paced: $PAUSE_MS ms before each request on each connection"
else echo "concurrency 64, flat out"; fi
printf '%-14s %10s %16s %8s %8s %8s %8s\n' policy c64_rps cpu_us_per_req user_us sys_us p50_us p99_us
for run in $(seq 1 "$RUNS"); do
  SEED=$run  # both policies of a run pair get the same hash seed (dict layouts, chunk names): one less difference
  for policy in least-loaded prefix-aware; do
    (cd "$TREE" && PYTHONPATH="$TREE" PYTHONHASHSEED=$SEED exec taskset -c 0 "$PYTHON" -m tide.gateway --port 18090 --routes "$WORK/$policy.yaml") \
      >"$WORK/gw.log" 2>&1 & GW=$!
    for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:18090/health && break; sleep 0.1; done
    taskset -c 1 wrk -t1 -c64 -d2s -s "$HERE/long_prompts.lua" http://127.0.0.1:18090/v1/chat/completions >/dev/null
    read -r user0 sys0 < <(cpu_ticks $GW)
    taskset -c 1 wrk -t1 -c64 -d${DUR}s --latency -s "$HERE/long_prompts.lua" http://127.0.0.1:18090/v1/chat/completions >"$WORK/wrk.out"
    read -r user1 sys1 < <(cpu_ticks $GW)
    kill $GW; wait $GW 2>/dev/null || true
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
    total=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.out")
    # wrk's latency percentiles (time from sending a request to its response), in us
    latency() { awk -v q="$1%" '$1 == q {v = $2; f = 1; if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1e3; else if (v ~ /s$/) f = 1e6; sub(/[a-z]+$/, "", v); printf "%.0f", v * f}' "$WORK/wrk.out"; }
    per_req() { awk -v t="$1" -v n="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}'; }
    us=$(per_req $((user1 + sys1 - user0 - sys0)))
    printf '%-14s %10s %16s %8s %8s %8s %8s %s %s\n' "$policy" "$rps" "$us" "$(per_req $((user1 - user0)))" \
      "$(per_req $((sys1 - sys0)))" "$(latency 50)" "$(latency 99)" "load=$(cut -d' ' -f1 /proc/loadavg)" \
      "${non2xx:+non2xx=$non2xx}" | tee -a "$RESULTS"
  done
done
"$PYTHON" - "$RESULTS" <<'PY'
import statistics
import sys

rows: dict[str, list[tuple[float, ...]]] = {}
for line in open(sys.argv[1]):
    policy, *figures = line.split()[:7]
    rows.setdefault(policy, []).append(tuple(map(float, figures)))
median = {p: [statistics.median(column) for column in zip(*v, strict=True)] for p, v in rows.items()}
for policy, (rps, us, user, system, p50, p99) in median.items():
    columns = list(zip(*rows[policy], strict=True))
    print(f"median {policy:<14} {rps:>10.0f} req/s (range {min(columns[0]):.0f}-{max(columns[0]):.0f})"
          f" {us:>8.1f} us/req (range {min(columns[1]):.1f}-{max(columns[1]):.1f}),"
          f" user {user:.1f} + system {system:.1f}; latency p50 {p50:.0f} us, p99 {p99:.0f} us")
ll, pa = median["least-loaded"], median["prefix-aware"]
print(f"prefix-aware / least-loaded: req/s x{pa[0] / ll[0]:.2f}, gateway CPU per request x{pa[1] / ll[1]:.2f},"
      f" latency p50 x{pa[4] / ll[4]:.2f}, p99 x{pa[5] / ll[5]:.2f}")
# Each run's pair (least-loaded, then prefix-aware seconds later): steadier than the medians when the
# machine's load drifts between runs.
pairs = list(zip(rows["least-loaded"], rows["prefix-aware"], strict=True))
for name, column in (("req/s", 0), ("CPU per request", 1), ("latency p50", 4), ("latency p99", 5)):
    ratios = sorted(b[column] / a[column] for a, b in pairs)
    print(f"  per run pair, {name}: median x{statistics.median(ratios):.2f} (range x{ratios[0]:.2f}-x{ratios[-1]:.2f})")
PY
