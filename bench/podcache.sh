#!/usr/bin/env bash
# The controller's memory with many pods in its watched namespaces that are
# not SpinKube apps, caching every pod (podSelector "") and SpinKube's only
# (podSelector core.spinkube.dev/app-name): on a local control plane
# (hack/cluster/up.sh, PORT_BASE 24000 unless -port-base says otherwise, in
# a temporary directory, torn down afterwards), 50 opted-in apps of 3 pods
# and 20,000 unrelated pods in 40 Deployments; the real bin/autoscaler runs
# twice, dry-run, 60 s after its caches sync. Prints a table and writes the
# section "The pod cache: podSelector" of docs/scale.md.
#
# Usage: bench/podcache.sh [FLAGS]   e.g. bench/podcache.sh -unrelated 1000
#   `go run ./bench/podcache -h` lists the flags. Creating 20,000 pods takes
#   minutes on 2 cores; the first run also builds the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/cluster/build.sh
make --no-print-directory build
exec go run ./bench/podcache -doc docs/scale.md "$@"
