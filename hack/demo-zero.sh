#!/usr/bin/env bash
# demo-zero.sh - watch a SpinKube app go to zero pods when idle and wake on
# its first HTTP request, held by Spinscale's activator, on a real, local
# control plane.
#
# Usage: make demo         (builds bin/autoscaler, then runs hack/demo.sh,
#                           hack/demo-rps.sh and this script)
#        hack/demo-zero.sh (expects bin/autoscaler, or AUTOSCALER=path)
#
# The activator (`autoscaler activator`, the same binary) is a reverse proxy
# that routes each request by host to a ready pod of the app, holds requests
# for an app with no ready pod, and streams per-app request counts to the
# controller, which scales on them (spinscale.dev/http-target-concurrency)
# and wakes an app from zero as soon as a request is held for it.
#
# This script shows that end to end, without containers or a cloud:
#   1. hack/cluster/build.sh builds the control plane from Go modules (first
#      run on a fresh machine: about 20-25 minutes; then under a second);
#   2. hack/cluster/up.sh starts the cluster in a fresh temporary directory
#      (real HPA controller off, two fake kwok nodes, no metrics-server);
#   3. hack/demo-podserve answers HTTP for each Running, Ready pod of the app
#      on the pod's address mapped onto loopback (kwok's pods get addresses in
#      10.244.0.0/16, which nothing routes; kube-apiserver refuses loopback
#      addresses in EndpointSlices, so the 10.244 addresses are published and
#      both sides map them, the activator with --endpoint-address-map);
#   4. it runs the activator (proxy on 127.0.0.1:PORT_BASE+10, admin on +11)
#      and bin/autoscaler with activator.addresses pointing at the admin port;
#   5. it creates a SpinApp 'hello' (0-5 replicas, 5 requests in flight per
#      pod, routed for the host hello.demo.local, pods Ready 2 s after they
#      start) at 1 replica, and its Service (port named http);
#   6. it sends one request (answered at once by the running pod), waits for
#      the idle app to go to zero (a 6 s stable window with no request, then
#      scale-to-zero-after 4 s), sends one request at zero and times it: held
#      by the activator, the app woken 0 → 1, answered once the new pod is
#      Ready; then one request for a host no app claims: a 404 naming it.
#   Everything is stopped and deleted on exit, Ctrl-C included.
# Once the binaries are cached it takes under a minute (measured 42 s).
#
# Environment (defaults in brackets):
#   DEMO_ZERO_PORT_BASE [19700]  cluster ports +0..+7, activator proxy +10, admin +11
#   DEMO_ZERO_ADDRESS_MAP [10.244.0.0/16=127.250.0.0/16]  pod addresses → loopback
#       (the integration tests use 127.100-249.0.0/16, one per test process)
#   AUTOSCALER [bin/autoscaler]
#   KEEP [0]  1 leaves the cluster running at the end and prints how to reach it
#   DEMO_LOG  a file to copy the autoscaler's full (debug) log to on exit
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=cluster/lib.sh
source "$ROOT/hack/cluster/lib.sh"

PORT_BASE=${DEMO_ZERO_PORT_BASE:-19700}
PROXY_PORT=$((PORT_BASE + 10))
ADMIN_PORT=$((PORT_BASE + 11))
ADDRESS_MAP=${DEMO_ZERO_ADDRESS_MAP:-10.244.0.0/16=127.250.0.0/16}
AUTOSCALER=${AUTOSCALER:-$ROOT/bin/autoscaler}
KEEP=${KEEP:-0}
DEMO_LOG=${DEMO_LOG:-}
BIN_DIR=$(default_bin_dir)
KUBECTL=$BIN_DIR/kubectl

DEMO_NAME=demo-zero
NS=demo-zero
APP=hello
HOST=hello.demo.local
STARTUP=2s    # a pod's start-up time before kwok marks it Ready
ZERO_AFTER=4s # spinscale.dev/scale-to-zero-after

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spinscale-demo-zero.XXXXXX")
STATE=$WORK/cluster
LOG=$WORK/autoscaler.log # the controller's console log
ACT_LOG=$WORK/activator.log
PODS_LOG=$WORK/podserve.log
KUBECONFIG_FILE=$STATE/kubeconfig
ACTIVATOR_PID='' PODSERVE_PID='' ACT_FOLLOW_PID='' PODS_FOLLOW_PID=''

# shellcheck source-path=SCRIPTDIR source=demo-lib.sh
source "$ROOT/hack/demo-lib.sh"

[ -x "$AUTOSCALER" ] || die "$AUTOSCALER not found: run 'make demo' (or 'make build' first)"
ensure_tools curl openssl jq

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$AUTOSCALER_PID"
	stop_pid "$ACTIVATOR_PID"
	stop_pid "$PODSERVE_PID"
	local p
	for p in "$FOLLOW_PID" "$ACT_FOLLOW_PID" "$PODS_FOLLOW_PID"; do
		[ -z "$p" ] || kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	demo_finish "$rc" "the activator and demo-podserve"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# follow_component NAME PID FILE DEBUG_MESSAGES: print the console log FILE
# of process PID as it is written, as "[NAME Ts] message key=value...": its
# info and above, and the debug lines whose message matches the regular
# expression DEBUG_MESSAGES.
follow_component() {
	local name=$1 pid=$2 file=$3 debug=$4 line level msg fields
	tail -n +1 -F --pid="$pid" "$file" 2>/dev/null | while IFS= read -r line; do
		IFS=$'\t' read -r _ level msg fields <<<"$line"
		if [ "$level" = debug ] && ! [[ $msg =~ ^($debug)$ ]]; then
			continue
		fi
		if [ -z "$msg" ]; then # not a console log line, e.g. client-go's klog
			printf '  [%s] %s\n' "$name" "$line"
		elif ! jq -r --arg head "  [$name $(elapsed)s] $msg" \
			'[$head] + [to_entries[] | select(.key != "namespace") | "\(.key)=\(.value)"] | join(" ")' <<<"${fields:-"{}"}" 2>/dev/null; then
			printf '  [%s %ss] %s %s\n' "$name" "$(elapsed)" "$msg" "$fields"
		fi
	done
}

# wait_for SECONDS WHAT CHECK...: run CHECK every 0.5 s until it succeeds;
# die naming WHAT after SECONDS.
wait_for() {
	local limit=$1 what=$2 i
	shift 2
	for ((i = 0; i < limit * 2; i++)); do
		"$@" && return 0
		sleep 0.5
	done
	die "$what: not within ${limit}s"
}

# ---------------------------------------------------------------- cluster
demo_build_cluster etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok

demo_start_cluster ", no metrics-server" "nodes" METRICS_SERVER=0

demo_install_crd

# ---------------------------------------------------------------- pods, activator, autoscaler
step "Starting demo-podserve (HTTP for each Ready pod of '$APP' on its address mapped by $ADDRESS_MAP)"
(cd "$ROOT" && go build -o "$WORK/demo-podserve" ./hack/demo-podserve)
"$WORK/demo-podserve" --kubeconfig "$KUBECONFIG_FILE" --namespace "$NS" \
	--selector "core.spinkube.dev/app-name=$APP" --address-map "$ADDRESS_MAP" 2>"$PODS_LOG" &
PODSERVE_PID=$!

step "Starting the activator (bin/autoscaler activator: proxy 127.0.0.1:$PROXY_PORT, admin 127.0.0.1:$ADMIN_PORT); its log and demo-podserve's as they happen:"
T0=$(date +%s) # times printed from here on count from the activator's start
"$AUTOSCALER" activator --kubeconfig "$KUBECONFIG_FILE" --namespaces "$NS" --name activator-0 \
	--listen "127.0.0.1:$PROXY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
	--endpoint-address-map "$ADDRESS_MAP" --queue-timeout 60s \
	--log-format console --log-level debug 2>"$ACT_LOG" >&2 &
ACTIVATOR_PID=$!
activator_ready() {
	kill -0 "$ACTIVATOR_PID" 2>/dev/null || die "the activator exited: $(tail -n 5 "$ACT_LOG")"
	curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1
}
follow_component activator "$ACTIVATOR_PID" "$ACT_LOG" 'wake sent' &
ACT_FOLLOW_PID=$!
follow_component pods "$PODSERVE_PID" "$PODS_LOG" 'serving pod|stopped serving pod' &
PODS_FOLLOW_PID=$!
wait_for 30 "the activator's /readyz" activator_ready
sleep 0.5 # let the followers print the start-up lines first

# ---------------------------------------------------------------- the app
step "Creating the SpinApp '$APP' (host $HOST, 0-5 replicas), its Deployment at 1 replica and its Service"
# http-target-concurrency: 5 requests in flight per pod, averaged over the
# 6 s stable window; with no request in a whole window the metric proposes 0
# pods, and min-replicas 0 with scale-to-zero-after lets the app go to zero
# once it has been idle that much longer. The pods take $STARTUP to turn
# Ready (kwok's pod-ready.stage.kwok.x-k8s.io/delay), as a Spin app starts.
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
  podAnnotations:
    pod-ready.stage.kwok.x-k8s.io/delay: "$STARTUP"
  deploymentAnnotations:
    spinscale.dev/enabled: "true"
    spinscale.dev/min-replicas: "0"
    spinscale.dev/max-replicas: "5"
    spinscale.dev/http-hosts: "$HOST"
    spinscale.dev/http-target-concurrency: "5"
    spinscale.dev/http-stable-window: "6s"
    spinscale.dev/scale-to-zero-after: "$ZERO_AFTER"
    spinscale.dev/scale-down-stabilization: "0s"
EOF
demo_create_app "        image: ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0
        ports: [{containerPort: 8080, name: http}]" \
	"        pod-ready.stage.kwok.x-k8s.io/delay: \"$STARTUP\""
kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $APP
  namespace: $NS
spec:
  selector:
    core.spinkube.dev/app-name: $APP
    core.spinkube.dev/app.$APP.status: ready
  ports:
  - {name: http, port: 80, targetPort: http}
EOF
echo "Service $NS/$APP created (port http: 80 → the pods' 8080)"

# ---------------------------------------------------------------- the act
# timed_curl HOST: one request through the activator, printed as the command,
# then its status, time and body. At most 70 s (the activator holds a
# request 60 s at most).
CODE='' TOOK=''
timed_curl() {
	local out body
	printf "  \$ curl -sS -H 'Host: %s' -w '%%{http_code} %%{time_total}' http://127.0.0.1:%s/\n" "$1" "$PROXY_PORT"
	out=$(curl -sS --max-time 70 -H "Host: $1" -w '\n%{http_code} %{time_total}' "http://127.0.0.1:$PROXY_PORT/" 2>&1) || true
	read -r CODE TOOK <<<"$(tail -n 1 <<<"$out")"
	body=$(sed '$d' <<<"$out")
	printf '  <<< %ss  HTTP %s in %ss: %s\n' "$(elapsed)" "$CODE" "$TOOK" "$body"
}
ready_pods() { kc get deploy "$APP" -o jsonpath='{.spec.replicas} {.status.readyReplicas}' 2>/dev/null; }
app_at() { [ "$(ready_pods)" = "$1" ]; } # "SPEC READY", READY empty at zero
served() { [ "$(grep -cF '	serving pod	' "$PODS_LOG")" -ge "$1" ]; }
# routed_to_pods yes|no: whether the activator's latest word on the app's
# ready endpoints is that it has some.
routed_to_pods() {
	local last
	last=$(grep -F '	ready endpoints changed	' "$ACT_LOG" | tail -n 1)
	case $1 in
	yes) grep -q '"after": *[1-9]' <<<"$last" ;;
	no) grep -q '"after": *0[,}]' <<<"$last" ;;
	esac
}

wait_for 30 "the app's first pod Ready, served and routed to" eval 'app_at "1 1" && served 1 && routed_to_pods yes'

demo_start_autoscaler "interval 5s, namespace $NS, activator.addresses=[http://127.0.0.1:$ADMIN_PORT]" \
	--set metricsServer.enabled=false --set activator.addresses="http://127.0.0.1:$ADMIN_PORT"
wait_for 30 "the autoscaler reading the activator's counts" grep -qF '	stats stream reader connected	' "$ACT_LOG"

step "Scale to zero and back, through the activator"
printf '  ---- %ss: the app runs 1 pod; one request through the activator:\n' "$(elapsed)"
timed_curl "$HOST"
[ "$CODE" = 200 ] || die "the request at 1 pod got '$CODE', not 200 (activator log: $ACT_LOG)"
T_IDLE=$(date +%s)
printf '  ---- %ss: no more requests; the app goes to zero after a %s stable window with none, then %s more\n' \
	"$(elapsed)" 6s "$ZERO_AFTER"
wait_for 60 "the idle app going to zero" app_at "0 "
T_ZERO=$(($(date +%s) - T_IDLE))
wait_for 30 "the last pod gone" eval 'routed_to_pods no && ! kc get pods -l core.spinkube.dev/app-name=$APP -o name 2>/dev/null | grep -q .'
printf '  ---- %ss: the app is at zero (%s=%s); a request for it, held by the activator until a pod is Ready:\n' \
	"$(elapsed)" spinscale.dev/scaled-to-zero "$(kc get deploy "$APP" -o jsonpath='{.metadata.annotations.spinscale\.dev/scaled-to-zero}')"
timed_curl "$HOST"
ZERO_CODE=$CODE ZERO_TOOK=$TOOK
sleep 1 # let the followers print what happened meanwhile
printf '  ---- %ss: a request for a host no app claims:\n' "$(elapsed)"
timed_curl unknown.demo.local
UNKNOWN_CODE=$CODE
sleep 1

# ---------------------------------------------------------------- summary
demo_stop_autoscaler
stop_pid "$ACTIVATOR_PID"
stop_pid "$PODSERVE_PID"
ACTIVATOR_PID='' PODSERVE_PID=''
wait "$ACT_FOLLOW_PID" "$PODS_FOLLOW_PID" 2>/dev/null || true
ACT_FOLLOW_PID='' PODS_FOLLOW_PID=''
demo_events

step "Summary"
echo "  idle at 1 pod → 0 pods ${T_ZERO}s after the last request (a 6s stable window + scale-to-zero-after ${ZERO_AFTER}, then the next decision)"
echo "  first request at zero: HTTP ${ZERO_CODE} in ${ZERO_TOOK}s (held by the activator: wake, 0 → 1, a pod start-up of ${STARTUP})"
echo "  unknown host: HTTP ${UNKNOWN_CODE}"
echo "  wall time so far: $(($(date +%s) - WALL0))s"
if [ "$ZERO_CODE" != 200 ] || [ "$UNKNOWN_CODE" != 404 ]; then
	die "expected 200 for the request at zero and 404 for the unknown host"
fi
