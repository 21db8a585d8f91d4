#!/usr/bin/env bash
# The HTTP activator against its figures (DESIGN.md §10) on a local control
# plane, every socket on loopback: added latency at 1,000 req/s, proxied
# requests per CPU-second, memory per 1,000 held requests, the first request
# at zero after its pod turns Ready, and a load step to the /scale write.
#
# Usage: bench/activator.sh [FLAGS]   e.g. bench/activator.sh -parts a,b,c
#   `go run ./bench/activator -h` lists the flags. The report goes to stdout
#   and docs/activator-bench.md (-out). The control plane runs on PORT_BASE
#   23100 by default (-port-base) and is torn down afterwards. About 8 min.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/cluster/build.sh
exec go run ./bench/activator -out docs/activator-bench.md "$@"
