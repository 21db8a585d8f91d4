#!/usr/bin/env bash
# Spinscale at scale on a local control plane, beside the real HPA: for each
# size N, N opted-in apps and N twins under an autoscaling/v2 HPA, 3 pods
# each, their load stepped at once. Prints per N how long until 50, 90 and
# 100 % of each group's apps had the right count, Spinscale's tick duration
# (p50, p99), RSS, CPU and API calls per tick; writes docs/scale.md and
# bench/images/scale.png.
#
# Usage: bench/scale.sh [FLAGS]   e.g. bench/scale.sh -sizes 1000,2000
#   default -sizes 100,250,500 (about 20 min on 2 cores); `go run ./bench/scale
#   -h` lists the flags. Each size runs on a control plane of its own
#   (hack/cluster/up.sh in a temporary directory), torn down afterwards.
# The first run builds the control plane (many minutes); later runs start it
# in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/cluster/build.sh
exec go run ./bench/scale -doc docs/scale.md -plot bench/images/scale.png "$@"
