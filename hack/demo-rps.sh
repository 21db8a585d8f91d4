#!/usr/bin/env bash
# demo-rps.sh - watch Spinscale autoscale a SpinKube app on requests per second
# from a real Prometheus, on a real, local control plane.
#
# Usage: make demo        (builds bin/autoscaler, then runs hack/demo.sh, this script and hack/demo-zero.sh)
#        hack/demo-rps.sh (expects bin/autoscaler, or AUTOSCALER=path)
#
# Spinscale reads a PromQL query from the app's annotations, runs it against
# Prometheus every tick (no metrics adapter), and decides as HPA does for an
# External metric with an AverageValue target: desired = ceil(total / target).
#
# This script shows that end to end, without containers or a cloud:
#   1. hack/cluster/build.sh builds the control plane from Go modules (first
#      run on a fresh machine: about 20-25 minutes; then under a second), and
#      Debian's prometheus package is installed if `prometheus` is missing;
#   2. hack/cluster/up.sh starts the cluster in a fresh temporary directory
#      (real HPA controller off, two fake kwok nodes, no metrics-server: this
#      app scales on Prometheus alone);
#   3. it creates a SpinApp 'hello' and the Deployment spin-operator would
#      create for it, annotated with
#        prometheus-query: sum(rate(traefik_service_requests_total{service="demo-rps-hello-80@kubernetes"}[10s]))
#        prometheus-target-average-value: "100"   (requests per second per pod)
#      the app's request rate as Traefik (k3s' and k3d's ingress) counts it;
#   4. hack/demo-exporter serves that counter as Traefik would, at a total
#      rate (RPS) the script sets, counting only while the app has a ready
#      pod; Prometheus scrapes it every second;
#   5. it runs bin/autoscaler (interval 5 s) and drives the traffic: idle
#      (IDLE_RPS), busy (PEAK_RPS: ceil(PEAK_RPS / 100) replicas), then idle
#      again with Prometheus stopped for OUTAGE seconds (the app holds, and a
#      Warning says why), then Prometheus back (scale-down within a tick or
#      two, the 30 s scale-down window having passed during the outage);
#   6. it prints every scaling decision, the replica count every 5 s, the
#      Events and a summary. Everything is stopped and deleted on exit, Ctrl-C
#      included.
# Once the binaries are cached it takes about 4 minutes (measured 227 s).
#
# Environment (defaults in brackets):
#   DEMO_RPS_PORT_BASE [19600]  cluster ports +0..+6, Prometheus +7, exporter +8
#   AUTOSCALER [bin/autoscaler]
#   IDLE_RPS [40] PEAK_RPS [750]  total requests per second. Not 800: 800 at 100
#       per pod is exactly 8.0, and any reading a hair above it makes 9.
#   OUTAGE [30]  seconds Prometheus is stopped after the busy phase (0: no outage)
#   KEEP [0]  1 leaves the cluster running at the end and prints how to reach it
#   DEMO_LOG  a file to copy the autoscaler's full (debug) log to on exit
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=cluster/lib.sh
source "$ROOT/hack/cluster/lib.sh"

PORT_BASE=${DEMO_RPS_PORT_BASE:-19600}
PROM_PORT=$((PORT_BASE + 7))
EXPORTER_PORT=$((PORT_BASE + 8))
AUTOSCALER=${AUTOSCALER:-$ROOT/bin/autoscaler}
IDLE_RPS=${IDLE_RPS:-40}
PEAK_RPS=${PEAK_RPS:-750}
OUTAGE=${OUTAGE:-30}
KEEP=${KEEP:-0}
DEMO_LOG=${DEMO_LOG:-}
BIN_DIR=$(default_bin_dir)
KUBECTL=$BIN_DIR/kubectl

NS=demo-rps
APP=hello
TARGET=100 # spinscale.dev/prometheus-target-average-value: requests per second per pod
MAX_REPLICAS=10
METRIC=traefik_service_requests_total
QUERY="sum(rate($METRIC{service=\"$NS-$APP-80@kubernetes\"}[10s]))"
# What a correct autoscaler settles on under PEAK_RPS: ceil(total / target).
EXPECTED=$(((PEAK_RPS + TARGET - 1) / TARGET))
[ "$EXPECTED" -le "$MAX_REPLICAS" ] || EXPECTED=$MAX_REPLICAS

DEMO_NAME=demo-rps
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spinscale-demo-rps.XXXXXX")
STATE=$WORK/cluster
LOG=$WORK/autoscaler.log # the controller's console log
LOAD_FILE=$WORK/rps      # current total requests per second, read by the exporter
KUBECONFIG_FILE=$STATE/kubeconfig
EXPORTER_PID='' PROM_PID=''

# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
source "$ROOT/hack/demo-lib.sh"

[ -x "$AUTOSCALER" ] || die "$AUTOSCALER not found: run 'make demo' (or 'make build' first)"
ensure_tools curl openssl jq prometheus

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$AUTOSCALER_PID"
	stop_pid "$EXPORTER_PID"
	stop_pid "$PROM_PID"
	[ -z "$FOLLOW_PID" ] || kill "$FOLLOW_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	demo_finish "$rc" "Prometheus and the exporter"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- cluster
demo_build_cluster etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok

demo_start_cluster ", no metrics-server" "nodes" METRICS_SERVER=0

demo_install_crd

# ---------------------------------------------------------------- exporter and Prometheus
step "Starting the request counter exporter (Traefik's series, 127.0.0.1:$EXPORTER_PORT) and Prometheus (127.0.0.1:$PROM_PORT, scrape every 1s)"
echo "$IDLE_RPS" >"$LOAD_FILE"
(cd "$ROOT" && go build -o "$WORK/demo-exporter" ./hack/demo-exporter)
"$WORK/demo-exporter" --kubeconfig "$KUBECONFIG_FILE" --namespace "$NS" --app "$APP" \
	--listen "127.0.0.1:$EXPORTER_PORT" --rps-file "$LOAD_FILE" --shape traefik >"$WORK/exporter.log" 2>&1 &
EXPORTER_PID=$!

cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: spin
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$EXPORTER_PORT']
EOF
start_prometheus() {
	local i
	prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
		--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >>"$WORK/prometheus.log" 2>&1 &
	PROM_PID=$!
	for ((i = 0; i < 150; i++)); do
		curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && return 0
		kill -0 "$PROM_PID" 2>/dev/null || die "prometheus exited: $(tail -n 5 "$WORK/prometheus.log")"
		sleep 0.2
	done
	die "prometheus did not become ready (log: $WORK/prometheus.log)"
}
start_prometheus
echo "prometheus $(prometheus --version 2>&1 | head -n 1 | awk '{print $3}') ready; query: $QUERY"

# ---------------------------------------------------------------- the autoscaler
demo_start_autoscaler "interval 5s, namespace $NS, prometheus.address=http://127.0.0.1:$PROM_PORT" \
	--set metricsServer.enabled=false --set prometheus.address="http://127.0.0.1:$PROM_PORT"

# ---------------------------------------------------------------- the app
step "Creating the SpinApp '$APP' and the Deployment spin-operator would make for it"
# scale-down-stabilization is shortened from its default (5m, as HPA) to 30s so
# that the scale-down happens within the demo. The default spinscale profile
# scales up by max(4 pods, 100 %) per 15 s and down by max(20 %, 1 pod) per
# 15 s.
cat >"$WORK/spinapp.yaml" <<EOF
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata:
  name: $APP
  namespace: $NS
spec:
  image: ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0
  executor: containerd-shim-spin
  enableAutoscaling: true        # spin-operator leaves spec.replicas to the autoscaler
  deploymentAnnotations:
    spinscale.dev/enabled: "true"
    spinscale.dev/min-replicas: "1"
    spinscale.dev/max-replicas: "$MAX_REPLICAS"
    spinscale.dev/prometheus-query: '$QUERY'
    spinscale.dev/prometheus-target-average-value: "$TARGET"
    spinscale.dev/scale-down-stabilization: "30s"
EOF
demo_create_app "        image: ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0
        ports: [{containerPort: 80, name: http-app}]"

# ---------------------------------------------------------------- phases
prom_now() { # the query's value as Prometheus answers it now: a number, "empty" or "down"
	curl -fsS --max-time 2 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$QUERY" 2>/dev/null |
		jq -r 'if (.data.result | length) == 0 then "empty"
			else .data.result[0].value[1] | tonumber | . * 10 | round / 10 | tostring end' 2>/dev/null ||
		echo down
}

status() { # PHASE
	local r
	read_replicas
	r=$(last_reason)
	printf '  %4ss  %-8s %5s  %7s  %8s  %5s   %s\n' "$(elapsed)" "$1" "$(<"$LOAD_FILE")" "$(prom_now)" "$SPEC" "$READY" "${r:-(no decision yet)}"
}
phase_text() { echo "$1 requests/s in all"; }

metrics_seen() { last_reason | grep -qE "$METRIC [0-9]"; }
settled_at_expected() { settled "$EXPECTED" 15; }
back_at_one() { [ "$SPEC" = 1 ] && [ "$READY" = 1 ]; }
never() { return 1; }

echo
printf '  %5s  %-8s %5s  %7s  %8s  %5s   %s\n' TIME PHASE RPS PROMQL REPLICAS READY "LATEST DECISION (from the autoscaler's log)"
run_phase idle "$IDLE_RPS" 10 90 metrics_seen
T_PEAK=$(elapsed)
run_phase busy "$PEAK_RPS" 30 150 settled_at_expected
HELD=''
if [ "$OUTAGE" -gt 0 ]; then
	printf '  ---- %ss: Prometheus stopped for %ss (traffic drops to %s requests/s meanwhile)\n' "$(elapsed)" "$OUTAGE" "$IDLE_RPS"
	stop_pid "$PROM_PID"
	PROM_PID=''
	run_phase outage "$IDLE_RPS" "$OUTAGE" "$OUTAGE" never
	HELD=$SPEC
	printf '  ---- %ss: Prometheus back (same port, same storage)\n' "$(elapsed)"
	start_prometheus
fi
T_IDLE=$(elapsed)
T_IDLE_WALL=$(date +%s)
run_phase idle "$IDLE_RPS" 0 150 back_at_one
T_DOWN=$(($(date +%s) - T_IDLE_WALL))

# ---------------------------------------------------------------- summary
demo_stop_autoscaler
demo_events

step "Summary"
scalings=$(grep -cF "	scaled	" "$LOG" || true)
echo "  traffic ${IDLE_RPS} → ${PEAK_RPS} requests/s at ${T_PEAK}s, back to ${IDLE_RPS} at ${T_IDLE}s (times since the autoscaler started)"
echo "  expected under ${PEAK_RPS} requests/s at ${TARGET} per pod: ceil(${PEAK_RPS}/${TARGET}) = ${EXPECTED} replicas; peak reached: ${PEAK}"
[ -z "$HELD" ] || echo "  Prometheus down for ${OUTAGE}s: held at ${HELD} replicas (no scale-down without data)"
echo "  scale operations: ${scalings}; final replicas: ${SPEC}, ${T_DOWN}s after Prometheus answered again"
echo "  wall time so far: $(($(date +%s) - WALL0))s"
if [ "$PEAK" -gt "$EXPECTED" ]; then
	# A 10 s rate() keeps rising for a window after the step: the spinscale
	# profile reads that as a burst and a rising load, and the scale-down
	# window then brings the app back to what the load needs.
	echo "  the step was read as a burst: peak ${PEAK} above ${EXPECTED}, then back down once the measured rate stopped rising"
fi
if [ "$PEAK" -lt "$EXPECTED" ] || [ "$SPEC" != 1 ] || { [ -n "$HELD" ] && [ "$HELD" != "$EXPECTED" ]; }; then
	echo "  NOTE: the app did not go 1 → $EXPECTED → (hold) → 1; see the decisions above"
fi
