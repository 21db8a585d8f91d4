#!/usr/bin/env bash
# Reaction latency on a local control plane: Spinscale, with its shipped
# defaults, and the real HPA beside it. Steps the load of apps at rest and
# prints the medians of
#   L1  metric visible in its source -> /scale write
#   L2  load step -> /scale write
# for Spinscale on Prometheus (5 s scrape) and on metrics.k8s.io, and for the
# HPA on metrics.k8s.io.
#
# Usage: bench/latency.sh [RUNS]    RUNS steps per row, default 5
# The first run builds the control plane (many minutes); later runs start it
# in seconds. The measurement is TestReactionLatency, which `make test` runs
# with one step per row.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
hack/cluster/build.sh
out=$(go test -count=1 -v -timeout 20m -run '^TestReactionLatency$' ./test/integration/ -args -latency-runs="$runs" 2>&1) || {
	printf '%s\n' "$out" >&2
	exit 1
}
# The test logs a title line and a four-line table; print them unindented.
printf '%s\n' "$out" | awk '/reaction latency/ {sub(/^.*reaction latency/, "reaction latency"); print; n = 4; next} n > 0 {sub(/^        /, ""); print; n--}'
