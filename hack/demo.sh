#!/usr/bin/env bash
# demo.sh - watch Spinscale autoscale a SpinKube app on a real, local control plane.
#
# Usage: make demo        (builds bin/autoscaler, then runs this script, hack/demo-rps.sh and hack/demo-zero.sh)
#        hack/demo.sh     (expects bin/autoscaler, or AUTOSCALER=path)
#
# Spinscale replaces the HorizontalPodAutoscaler for SpinKube apps: every tick
# it reads the pods and metrics of each Deployment annotated
# spinscale.dev/enabled: "true", decides a replica count (by default with the
# spinscale profile: HPA's rules plus a faster reaction to bursts and a
# gradual scale-down; never scaling down on missing data) and patches
# deployments/NAME/scale.
# spin-operator copies a SpinApp's spec.deploymentAnnotations onto the
# Deployment it creates, so an app opts in from its SpinApp.
#
# This script shows that end to end, without containers or a cloud:
#   1. hack/cluster/build.sh builds kube-apiserver, kube-controller-manager,
#      kube-scheduler, kubectl, etcd, kwok and metrics-server from Go modules
#      (first run on a fresh machine: about 20-25 minutes; then under a second);
#   2. hack/cluster/up.sh starts them in a fresh temporary directory, with the
#      real HPA controller turned off, two fake kwok nodes and metrics-server
#      scraping every 10 s;
#   3. it installs the SpinApp CRD, a SpinApp cpu-load-gen and the Deployment
#      spin-operator would create for it (the operator itself is not needed:
#      Spinscale only reads the SpinApp to check spec.enableAutoscaling);
#   4. it runs bin/autoscaler (interval 5 s) and emulates CPU load: kwok reports
#      each pod's usage from its kwok.x-k8s.io/usage-cpu annotation, and a
#      background loop spreads a fixed TOTAL load over the ready pods, as a
#      load balancer would. Phases: idle (20m in total), busy (380m: at a 50 %
#      target of 100m requests that is ceil(7.6) = 8 replicas), idle again
#      (back to 1 replica once the 30 s scale-down window has passed, by at
#      most max(20 %, 1 pod) per 15 s);
#   5. it prints every scaling decision as it happens, the replica count every
#      5 s, and a summary. Everything is stopped and deleted on exit, Ctrl-C
#      included.
# Once the binaries are cached it takes about 4 minutes (measured 226 s).
#
# Environment (defaults in brackets):
#   DEMO_PORT_BASE [19443]  ports of the demo cluster (+0..+6); tests use 17443 and 20000-24000
#   AUTOSCALER [bin/autoscaler]
#   IDLE_LOAD [20] PEAK_LOAD [380]   total emulated CPU load in millicores. Not 400:
#       on the way up, 400m over 5 pods is exactly 80 % → 8.0 replicas, so a 1 %
#       measurement jitter in metrics-server makes it 9 (HPA would do the same).
#   KEEP [0]  1 leaves the cluster running at the end and prints how to reach it
#   DEMO_LOG  a file to copy the autoscaler's full (debug) log to on exit
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=cluster/lib.sh
source "$ROOT/hack/cluster/lib.sh"

PORT_BASE=${DEMO_PORT_BASE:-19443}
AUTOSCALER=${AUTOSCALER:-$ROOT/bin/autoscaler}
IDLE_LOAD=${IDLE_LOAD:-20}
PEAK_LOAD=${PEAK_LOAD:-380}
KEEP=${KEEP:-0}
DEMO_LOG=${DEMO_LOG:-}
BIN_DIR=$(default_bin_dir)
KUBECTL=$BIN_DIR/kubectl

DEMO_NAME=demo
NS=demo
APP=cpu-load-gen
REQUEST=100 # millicores requested per pod
TARGET=50   # spinscale.dev/target-cpu-utilization
MAX_REPLICAS=10
# What a correct autoscaler settles on under PEAK_LOAD: ceil(load / (request × target)).
EXPECTED=$(((PEAK_LOAD * 100 + REQUEST * TARGET - 1) / (REQUEST * TARGET)))
[ "$EXPECTED" -le "$MAX_REPLICAS" ] || EXPECTED=$MAX_REPLICAS

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spinscale-demo.XXXXXX")
STATE=$WORK/cluster
LOG=$WORK/autoscaler.log # the controller's console log
LOAD_FILE=$WORK/load     # current total load in millicores, read by the load loop
KUBECONFIG_FILE=$STATE/kubeconfig
LOAD_PID=''

# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
source "$ROOT/hack/demo-lib.sh"

[ -x "$AUTOSCALER" ] || die "$AUTOSCALER not found: run 'make demo' (or 'make build' first)"
ensure_tools curl openssl jq

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true
	stop_pid "$AUTOSCALER_PID"
	[ -z "$FOLLOW_PID" ] || kill "$FOLLOW_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	demo_finish "$rc" ""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- cluster
demo_build_cluster etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok metrics-server

demo_start_cluster "" "apiservice v1beta1.metrics.k8s.io" METRIC_RESOLUTION=10s

demo_install_crd

# ---------------------------------------------------------------- the autoscaler
demo_start_autoscaler "interval 5s, namespace $NS"

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
  image: ghcr.io/spinkube/spin-operator/cpu-load-gen:20240311-163328-g1121986
  executor: containerd-shim-spin
  enableAutoscaling: true        # spin-operator leaves spec.replicas to the autoscaler
  resources:
    requests: {cpu: ${REQUEST}m, memory: 128Mi}
  deploymentAnnotations:
    spinscale.dev/enabled: "true"
    spinscale.dev/min-replicas: "1"
    spinscale.dev/max-replicas: "$MAX_REPLICAS"
    spinscale.dev/target-cpu-utilization: "$TARGET"
    spinscale.dev/scale-down-stabilization: "30s"
EOF
demo_create_app "        image: ghcr.io/spinkube/spin-operator/cpu-load-gen:20240311-163328-g1121986
        ports: [{containerPort: 80, name: http-app}]
        resources:
          requests: {cpu: ${REQUEST}m, memory: 128Mi}"

# ---------------------------------------------------------------- emulated load
# Every 2 s: spread the total in LOAD_FILE evenly over the Running, Ready,
# not terminating pods. metrics-server reports a new value 20-60 s later.
echo "$IDLE_LOAD" >"$LOAD_FILE"
load_loop() {
	local total n per pods
	while :; do
		total=$(<"$LOAD_FILE")
		mapfile -t pods < <(kc get pods -l "core.spinkube.dev/app-name=$APP" -o json 2>/dev/null | jq -r '
			.items[] | select(.status.phase == "Running" and .metadata.deletionTimestamp == null)
			| select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))
			| .metadata.name' 2>/dev/null || true)
		n=${#pods[@]}
		if [ "$n" -gt 0 ]; then
			per=$(((total + n / 2) / n))
			[ "$per" -ge 1 ] || per=1
			kc annotate pod "${pods[@]}" --overwrite "kwok.x-k8s.io/usage-cpu=${per}m" >/dev/null 2>&1 || true
		fi
		sleep 2
	done
}
load_loop &
LOAD_PID=$!

# ---------------------------------------------------------------- phases
status() { # PHASE
	local r
	read_replicas
	r=$(last_reason)
	printf '  %4ss  %-8s %5s  %8s  %5s   %s\n' "$(elapsed)" "$1" "$(<"$LOAD_FILE")m" "$SPEC" "$READY" "${r:-(no decision yet)}"
}
phase_text() { echo "total load ${1}m"; }

metrics_seen() { last_reason | grep -qE 'cpu [0-9]+%'; }
settled_at_expected() { settled "$EXPECTED" 15; }
settled_at_one() { settled 1 10; }

echo
printf '  %5s  %-8s %5s  %8s  %5s   %s\n' TIME PHASE LOAD REPLICAS READY "LATEST DECISION (from the autoscaler's log)"
run_phase idle "$IDLE_LOAD" 15 90 metrics_seen
T_PEAK=$(elapsed)
run_phase busy "$PEAK_LOAD" 30 150 settled_at_expected
STABLE_SINCE=''
T_IDLE=$(elapsed)
T_IDLE_WALL=$(date +%s)
run_phase idle "$IDLE_LOAD" 0 150 settled_at_one
T_DOWN=$((${STABLE_SINCE:-$(date +%s)} - T_IDLE_WALL))

# ---------------------------------------------------------------- summary
demo_stop_autoscaler
demo_events

step "Summary"
scalings=$(grep -cF "	scaled	" "$LOG" || true)
echo "  load ${IDLE_LOAD}m → ${PEAK_LOAD}m at ${T_PEAK}s, back to ${IDLE_LOAD}m at ${T_IDLE}s (times since the autoscaler started)"
echo "  expected under ${PEAK_LOAD}m at a ${TARGET}% target of ${REQUEST}m: ${EXPECTED} replicas; peak reached: ${PEAK}"
echo "  scale operations: ${scalings}; final replicas: ${SPEC}, seen ${T_DOWN}s after the load dropped"
echo "  (metrics-server lag, the 30s scale-down window, then at most max(20%, 1 pod) per 15 s)"
echo "  wall time so far: $(($(date +%s) - WALL0))s"
if [ "$PEAK" != "$EXPECTED" ] || [ "$SPEC" != 1 ]; then
	echo "  NOTE: the app did not go 1 → $EXPECTED → 1; see the decisions above"
fi
