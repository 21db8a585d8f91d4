# shellcheck shell=bash
# demo-lib.sh - what hack/demo.sh and hack/demo-rps.sh share: the local
# control plane, the SpinApp and its Deployment, the autoscaler with its log
# printed as it happens, and the timed phases with a status line every 5 s.
#
# Source it after hack/cluster/lib.sh, with these set:
#   ROOT AUTOSCALER BIN_DIR KUBECTL   paths
#   DEMO_NAME                          prefix of error messages
#   NS APP                             the demo's namespace and app
#   WORK STATE LOG KUBECONFIG_FILE     the run's directory, the cluster's
#                                      state, the autoscaler's log, its kubeconfig
#   LOAD_FILE                          the current load, read by the emulation
# and define, before running phases:
#   status PHASE                       print one status line (set SPEC, READY, PEAK)
#   phase_text LOAD                    how a phase's load reads ("total load 20m")

# shellcheck disable=SC2034 # WALL0 is read by the demo scripts
WALL0=$(date +%s)
AUTOSCALER_PID='' FOLLOW_PID='' T0=''

step() { printf '\n==> %s\n' "$*"; }
die() {
	printf '%s: ERROR: %s\n' "$DEMO_NAME" "$*" >&2
	exit 1
}

kc() { "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" -n "$NS" "$@"; }

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
	local i
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# demo_build_cluster BINARY...: build (or find cached) the control plane.
demo_build_cluster() {
	local b cold=0
	step "Building the local control plane (hack/cluster/build.sh)"
	for b in "$@"; do
		[ -x "$BIN_DIR/$b" ] || cold=1
	done
	if [ "$cold" = 1 ]; then
		echo "First run on this machine: compiling Kubernetes v1.37, etcd, kwok and metrics-server"
		echo "from source into $BIN_DIR. This takes about 20-25 minutes on 2 cores;"
		echo "every later run reuses the binaries and starts in seconds."
	else
		echo "binaries cached in $BIN_DIR"
	fi
	"$ROOT/hack/cluster/build.sh" "$BIN_DIR"
}

# demo_start_cluster NOTE READY ENV...: start the cluster in $STATE on
# $PORT_BASE, with the real HPA controller and the custom metrics adapter
# off and the further up.sh settings ENV (NAME=VALUE); die unless
# `kc get READY` answers.
demo_start_cluster() {
	local note=$1 ready=$2
	shift 2
	step "Starting the cluster in $STATE (PORT_BASE=$PORT_BASE, real HPA controller off$note)"
	env PORT_BASE="$PORT_BASE" KCM_CONTROLLERS='*,-horizontalpodautoscaling' CUSTOM_METRICS_ADAPTER=0 "$@" \
		"$ROOT/hack/cluster/up.sh" "$STATE" "$BIN_DIR" 2>&1 | grep -E 'starting|cluster up|ERROR' || true
	# shellcheck disable=SC2086 # READY is a kind and, maybe, a name
	if [ ! -s "$KUBECONFIG_FILE" ] || ! kc get $ready >/dev/null; then
		die "the cluster did not come up (logs: $STATE/logs)"
	fi
	kc get nodes
}

# demo_finish RC OTHERS: the end of every demo's cleanup, once its own
# processes are stopped: keep the log, keep the cluster with KEEP=1 after a
# success, else stop it and delete $WORK; exit RC. OTHERS names what the
# demo stopped besides the autoscaler ("" for nothing).
demo_finish() {
	local rc=$1 others=$2
	[ -z "$DEMO_LOG" ] || cp -f "$LOG" "$DEMO_LOG" 2>/dev/null || true
	if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then
		printf '\nKEEP=1: the cluster is still running%s:\n  source %s/env; kubectl -n %s get deploy,pods\n' \
			"${others:+ ($others are stopped)}" "$STATE" "$NS"
		printf 'stop it with: hack/cluster/down.sh %s --purge; rm -rf %s\n' "$STATE" "$WORK"
		exit "$rc"
	fi
	if [ -n "$others" ]; then
		step "Cleaning up: stopping the cluster, $others; deleting $WORK"
	else
		step "Cleaning up: stopping the cluster and deleting $WORK"
	fi
	"$ROOT/hack/cluster/down.sh" "$STATE" --purge 2>&1 | grep -v '^\[down\] stopped' || true
	rm -rf "$WORK"
	printf 'done (exit %s, %ss in all)\n' "$rc" "$(($(date +%s) - WALL0))"
	exit "$rc"
}

# demo_install_crd: the SpinApp CRD and the demo's namespace.
demo_install_crd() {
	step "Installing the SpinApp CRD (spin-operator v0.6.1) and namespace $NS"
	kc apply -f "$ROOT/test/integration/testdata/spinapp-crd.yaml" >/dev/null
	# kubectl wait fails at once, rather than waiting, while a CRD just
	# created has no status conditions yet: try again, for 60 s at most.
	local i
	for i in $(seq 1 60); do
		kc wait --for condition=established --timeout=5s crd/spinapps.core.spinkube.dev >/dev/null 2>&1 && break
		[ "$i" -lt 60 ] || die "the SpinApp CRD was not established within 60 s"
		sleep 1
	done
	kc create namespace "$NS" >/dev/null
}

# demo_start_autoscaler DESCRIPTION [--set key=value]...: run bin/autoscaler
# outside the cluster with the admin kubeconfig, as it would run inside
# (minus leader election and the HTTP endpoints), print its log as it is
# written and wait for its caches. Times printed from then on count from here,
# unless the script set T0 (date +%s) before.
demo_start_autoscaler() {
	local desc=$1 i
	shift
	step "Starting bin/autoscaler ($desc); its log as it happens:"
	T0=${T0:-$(date +%s)}
	"$AUTOSCALER" run --kubeconfig "$KUBECONFIG_FILE" \
		--set interval=5s --set leaderElection.enabled=false --set namespaces="$NS" \
		--set server.metricsAddress=0 --set server.healthAddress=0 \
		--set log.format=console --set log.level=debug "$@" \
		>"$WORK/autoscaler.out" 2>"$LOG" &
	AUTOSCALER_PID=$!
	follow_log &
	FOLLOW_PID=$!
	for ((i = 0; i < 60; i++)); do
		grep -qF "	caches synced" "$LOG" 2>/dev/null && break
		kill -0 "$AUTOSCALER_PID" 2>/dev/null || die "the autoscaler exited: $(tail -n 5 "$LOG")"
		sleep 0.5
	done
	sleep 0.5 # let the follower print the start-up lines first
}

elapsed() { echo $(($(date +%s) - T0)); }

# follow_log prints the controller's log as it is written, minus the
# per-tick "decided" debug lines (the status table shows the latest one). A
# console log line is: time TAB level TAB [logger TAB] message TAB {json}.
follow_log() {
	local line level msg fields
	tail -n +1 -F --pid="$AUTOSCALER_PID" "$LOG" 2>/dev/null | while IFS= read -r line; do
		IFS=$'\t' read -r _ level msg fields <<<"$line"
		[ "$level" = debug ] && continue
		case $msg in
		scaled)
			jq -r --arg t "$(elapsed)" \
				'"  >>> \($t)s  SCALED \(.currentReplicas) → \(.desiredReplicas)  [limitedBy \(.limitedBy)]\n        \(.reason)"' \
				<<<"$fields" 2>/dev/null || echo "  >>> $line"
			;;
		*)
			if [ -z "$msg" ]; then # not one of ours, e.g. client-go's klog
				printf '  [spinscale] %s\n' "$line"
			elif ! jq -r --arg head "  [spinscale $level] $msg" \
				'[$head] + [to_entries[] | "\(.key)=\(.value)"] | join(" ")' <<<"${fields:-"{}"}" 2>/dev/null; then
				printf '  [spinscale %s] %s %s\n' "$level" "$msg" "$fields"
			fi
			;;
		esac
	done
}

# demo_create_app CONTAINER [POD_ANNOTATIONS]: apply $WORK/spinapp.yaml
# (printed first), then the Deployment spin-operator creates for it: same
# name, owned by it, the deploymentAnnotations copied on, selecting the app's
# "ready" pods, with one container given as YAML lines under "- name: $APP"
# (image, ports, resources) and the pod template's annotations as YAML lines
# under "annotations:" (the SpinApp's podAnnotations; default none). The
# image is never pulled: kwok only pretends to run the pods.
demo_create_app() {
	local container=$1 pod_annotations=${2:-'        {}'} uid annotations
	sed 's/^/    /' "$WORK/spinapp.yaml"
	kc apply -f "$WORK/spinapp.yaml" >/dev/null
	uid=$(kc get spinapp "$APP" -o jsonpath='{.metadata.uid}')
	annotations=$(sed -n 's/^    \(spinscale\.dev\/.*\)$/    \1/p' "$WORK/spinapp.yaml")
	kc apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $APP
  namespace: $NS
  labels:
    core.spinkube.dev/app-name: $APP
  annotations:
$annotations
  ownerReferences:
  - apiVersion: core.spinkube.dev/v1alpha1
    kind: SpinApp
    name: $APP
    uid: $uid
    controller: true
    blockOwnerDeletion: true
spec:
  replicas: 1
  selector:
    matchLabels:
      core.spinkube.dev/app-name: $APP
      core.spinkube.dev/app.$APP.status: ready
  template:
    metadata:
      labels:
        core.spinkube.dev/app-name: $APP
        core.spinkube.dev/app.$APP.status: ready
      annotations:
$pod_annotations
    spec:
      containers:
      - name: $APP
$container
EOF
	echo "Deployment $NS/$APP created (owned by SpinApp uid $uid), 1 replica"
}

# The latest decision's reason, e.g. "hold at 1: cpu 20%/50% → 1".
last_reason() {
	grep -F "	decided	" "$LOG" 2>/dev/null | tail -n 1 | awk -F'\t' '{print $NF}' | jq -r '.reason // empty' 2>/dev/null || true
}
replicas() { kc get deploy "$APP" -o jsonpath='{.spec.replicas} {.status.readyReplicas}' 2>/dev/null || true; }

SPEC=0 READY=0 PEAK=0
# read_replicas sets SPEC and READY, and PEAK to the highest SPEC seen.
read_replicas() {
	read -r SPEC READY <<<"$(replicas)" || true
	SPEC=${SPEC:-0} READY=${READY:-0}
	[ "$SPEC" -le "$PEAK" ] || PEAK=$SPEC
}

# run_phase NAME LOAD MIN MAX DONE: set the load, print a status line every
# 5 s, and end once MIN seconds have passed and DONE succeeds (or after MAX).
run_phase() {
	local name=$1 load=$2 min=$3 max=$4 done_fn=$5 start t
	echo "$load" >"$LOAD_FILE"
	printf '  ---- %ss: %s, %s\n' "$(elapsed)" "$name" "$(phase_text "$load")"
	start=$(date +%s)
	while :; do
		sleep 5
		status "$name"
		t=$(($(date +%s) - start))
		if [ "$t" -ge "$min" ] && "$done_fn"; then return 0; fi
		if [ "$t" -ge "$max" ]; then
			printf '  ---- %s: gave up waiting after %ss\n' "$name" "$max"
			return 0
		fi
	done
}

# settled N SECONDS: replicas and ready replicas have been N for SECONDS.
STABLE_SINCE=''
settled() {
	if [ "$SPEC" = "$1" ] && [ "$READY" = "$1" ]; then
		: "${STABLE_SINCE:=$(date +%s)}"
		[ $(($(date +%s) - STABLE_SINCE)) -ge "$2" ]
	else
		STABLE_SINCE=''
		return 1
	fi
}

# demo_stop_autoscaler: stop it and let the log follower drain.
demo_stop_autoscaler() {
	stop_pid "$AUTOSCALER_PID"
	AUTOSCALER_PID=''
	wait "$FOLLOW_PID" 2>/dev/null || true
}

# demo_events: the Events recorded on the app's Deployment.
demo_events() {
	step "Events recorded on deployment/$APP"
	kc get events --field-selector "involvedObject.kind=Deployment,involvedObject.name=$APP" \
		--sort-by=.lastTimestamp -o custom-columns='TIME:.lastTimestamp,TYPE:.type,REASON:.reason,MESSAGE:.message'
}
