#!/usr/bin/env bash
# Tide's gateway next to the floor (direct) and nginx, through the shared peers harness
# (shared/bench/peers/run.sh): the gateway gets CPU 0 alone; the stub model server and wrk share CPU 1.
# Runs the harness RUNS times (the machine is shared: single runs are noisy), prints every table, then
# the per-target medians and Tide's ratios to direct and nginx.
# Usage: bench/gateway/run.sh            env: RUNS (3), DUR (4 s per measurement), TARGETS, PYTHON, PEERS
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PEERS=${PEERS:-$REPO/../shared/bench/peers}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
RUNS=${RUNS:-3}
export DUR=${DUR:-4}
export TIDE_CMD="$PYTHON -m tide.gateway --port 8080 --routes $HERE/tiny.yaml"
TARGETS=${TARGETS:-direct nginx tide}
command -v hey >/dev/null || { apt-get update -qq && apt-get install -y -qq hey >/dev/null; }
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
cd "$REPO"
for run in $(seq 1 "$RUNS"); do
  echo "== run $run/$RUNS (DUR=${DUR}s)"
  # shellcheck disable=SC2086
  bash "$PEERS/run.sh" $TARGETS | tee -a "$RESULTS"
done
"$PYTHON" - "$RESULTS" <<'PY'
import statistics
import sys

rows: dict[str, list[list[float]]] = {}
for line in open(sys.argv[1]):
    fields = line.split()
    if len(fields) >= 5 and fields[0] != "target":
        try:
            rows.setdefault(fields[0], []).append([float(v) for v in fields[1:5]])
        except ValueError:
            pass
print(f"\nmedians over {max(len(v) for v in rows.values())} runs")
print(f"{'target':<12} {'p50_ms':>10} {'p99_ms':>10} {'c1_rps':>10} {'c64_rps':>12}")
median = {t: [statistics.median(col) for col in zip(*v)] for t, v in rows.items()}
for target, (p50, p99, c1, c64) in median.items():
    print(f"{target:<12} {p50:>10.3f} {p99:>10.3f} {c1:>10.0f} {c64:>12.0f}")
if "tide" in median:
    tide = median["tide"]
    for base in ("direct", "nginx"):
        if base in median:
            b = median[base]
            print(
                f"tide vs {base}: added p50 {tide[0] - b[0]:+.3f} ms, c1 rps x{tide[2] / b[2]:.2f}, "
                f"c64 rps x{tide[3] / b[3]:.2f}"
            )
PY
