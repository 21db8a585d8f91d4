#!/usr/bin/env bash
# Spinscale and the upstream HPA controller side by side on a local control
# plane: each scales its own copy of the same app under the same emulated
# load. Prints, for both, the time to the first scale-up, the time to the
# steady count, and the final replica count.
#
# Usage: bench/hpa-side-by-side.sh
# The first run builds the control plane (many minutes); later runs start it
# in seconds. The measurement is TestSettlesLikeTheRealHPA, which `make test`
# also runs and which fails if the two disagree.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/cluster/build.sh
out=$(go test -count=1 -v -timeout 15m -run '^TestSettlesLikeTheRealHPA$' ./test/integration/ 2>&1) || {
	printf '%s\n' "$out" >&2
	exit 1
}
# The test logs a title line and a three-line table; print them unindented.
printf '%s\n' "$out" | awk '/side by side/ {sub(/^.*side by side/, "side by side"); print; n = 3; next} n > 0 {sub(/^        /, ""); print; n--}'
