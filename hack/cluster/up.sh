#!/usr/bin/env bash
# up.sh - start (or complete) Spinscale's local test cluster in STATE_DIR.
#
# Usage: hack/cluster/up.sh STATE_DIR [BIN_DIR]
#   BIN_DIR defaults to $SPINSCALE_CLUSTER_BIN or ~/.cache/spinscale/cluster/bin (see build.sh)
#
# A real control plane without containers, every process on 127.0.0.1:
#   etcd, kube-apiserver, kube-controller-manager (with the real HPA controller
#   unless KCM_CONTROLLERS turns it off), kube-scheduler, kwok (fake nodes, pod
#   lifecycle, emulated kubelet resource metrics), metrics-server, registered
#   as the v1beta1.metrics.k8s.io APIService, and custom-metrics-adapter
#   (hack/cluster/metrics-adapter), registered as v1beta2 and v1beta1 of
#   custom.metrics.k8s.io and v1beta1 of external.metrics.k8s.io, whose values
#   tests write over its HTTPS port (see README.md).
#
# Idempotent: a component that is already running is left alone and only
# health-checked; one that was stopped (down.sh --only ...) is started again.
# Every process runs in its own session (setsid), so it outlives this script.
#
# STATE_DIR afterwards holds:
#   kubeconfig        admin (system:masters) kubeconfig
#   env               `source` it: KUBECONFIG, SPINSCALE_CLUSTER_* variables
#   pki/              openssl-made CA, serving/admin/front-proxy certs, SA key
#   etcd/             etcd data
#   logs/NAME.log     pids/NAME.pid   one per component
#
# Environment (defaults in brackets):
#   PORT_BASE [17443, or the one STATE_DIR was started with]
#       kube-apiserver +0, etcd +1 (peer +2), kube-controller-manager +3,
#       kube-scheduler +4, kwok +5, metrics-server +6, custom-metrics-adapter +7;
#       give each parallel cluster its own base
#   COMPONENTS [etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server custom-metrics-adapter]
#       which components to ensure; e.g. "etcd kube-apiserver" for an API server alone
#   NODES [2]  NODE_CPU [32]  NODE_MEMORY [256Gi]  NODE_PODS [110]   fake nodes kwok-node-N
#   METRICS_SERVER [1]         0 drops metrics-server from COMPONENTS
#   CUSTOM_METRICS_ADAPTER [1] 0 drops custom-metrics-adapter from COMPONENTS
#   METRIC_RESOLUTION [15s]    metrics-server scrape interval (10s minimum)
#   KCM_CONTROLLERS [*]        "*,-horizontalpodautoscaling" runs without the real HPA
#   HPA_SYNC_PERIOD [15s]      the real HPA's sync period
#   TIMEOUT [120]              seconds allowed for each readiness check
#   ETCD_EXTRA_ARGS APISERVER_EXTRA_ARGS KCM_EXTRA_ARGS SCHEDULER_EXTRA_ARGS
#   KWOK_EXTRA_ARGS METRICS_SERVER_EXTRA_ARGS CUSTOM_METRICS_ADAPTER_EXTRA_ARGS
#       extra flags, split on whitespace
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

STATE_DIR=${1:?usage: up.sh STATE_DIR [BIN_DIR]}
BIN_DIR=${2:-$(default_bin_dir)}
NODES=${NODES:-2}
NODE_CPU=${NODE_CPU:-32}
NODE_MEMORY=${NODE_MEMORY:-256Gi}
NODE_PODS=${NODE_PODS:-110}
METRICS_SERVER=${METRICS_SERVER:-1}
CUSTOM_METRICS_ADAPTER=${CUSTOM_METRICS_ADAPTER:-1}
METRIC_RESOLUTION=${METRIC_RESOLUTION:-15s}
KCM_CONTROLLERS=${KCM_CONTROLLERS:-*}
HPA_SYNC_PERIOD=${HPA_SYNC_PERIOD:-15s}
TIMEOUT=${TIMEOUT:-120}
COMPONENTS=${COMPONENTS:-${CLUSTER_COMPONENTS[*]}}
HOST=$CLUSTER_HOST

T0=$(date +%s%N)
log() { printf '[up %5.1fs] %s\n' "$((($(date +%s%N) - T0) / 1000000))e-3" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -d "$BIN_DIR" ] || die "no binaries in $BIN_DIR: run hack/cluster/build.sh first"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
PKI=$STATE_DIR/pki
LOGS=$STATE_DIR/logs
PIDS=$STATE_DIR/pids
KUBECONFIG_FILE=$STATE_DIR/kubeconfig
mkdir -p "$PKI" "$LOGS" "$PIDS" "$STATE_DIR/etcd"
chmod 700 "$PKI"

# One up.sh at a time per STATE_DIR. Started components must not inherit fd 9,
# or they would hold the lock for ever (see start()).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$STATE_DIR/.up.lock"
	flock -w "$TIMEOUT" 9 || die "another up.sh holds $STATE_DIR/.up.lock"
fi

# A cluster keeps its ports: without PORT_BASE, reuse the one STATE_DIR was started with.
saved_base=$(cat "$STATE_DIR/port-base" 2>/dev/null || true)
PORT_BASE=${PORT_BASE:-${saved_base:-$CLUSTER_DEFAULT_PORT_BASE}}
if [ -n "$saved_base" ] && [ "$saved_base" != "$PORT_BASE" ]; then
	for c in "${CLUSTER_COMPONENTS[@]}"; do
		component_pid "$c" "$STATE_DIR" >/dev/null &&
			die "$STATE_DIR runs on PORT_BASE=$saved_base; stop it (down.sh) before changing PORT_BASE"
	done
fi
echo "$PORT_BASE" >"$STATE_DIR/port-base"
APISERVER_PORT=$(port_of kube-apiserver "$PORT_BASE")
ETCD_PORT=$(port_of etcd "$PORT_BASE")
ETCD_PEER_PORT=$(port_of etcd-peer "$PORT_BASE")
KCM_PORT=$(port_of kube-controller-manager "$PORT_BASE")
SCHEDULER_PORT=$(port_of kube-scheduler "$PORT_BASE")
KWOK_PORT=$(port_of kwok "$PORT_BASE")
METRICS_SERVER_PORT=$(port_of metrics-server "$PORT_BASE")
ADAPTER_PORT=$(port_of custom-metrics-adapter "$PORT_BASE")

wanted=()
for c in $COMPONENTS; do
	is_component "$c" || die "unknown component '$c' (known: ${CLUSTER_COMPONENTS[*]})"
	[ "$c" = metrics-server ] && [ "$METRICS_SERVER" = 0 ] && continue
	[ "$c" = custom-metrics-adapter ] && [ "$CUSTOM_METRICS_ADAPTER" = 0 ] && continue
	wanted+=("$c")
done
want() {
	local c
	for c in "${wanted[@]}"; do [ "$c" = "$1" ] && return 0; done
	return 1
}

ensure_tools openssl curl
for c in "${wanted[@]}" kubectl; do
	[ -x "$BIN_DIR/$c" ] || die "$BIN_DIR/$c is missing: run hack/cluster/build.sh $BIN_DIR"
done
KUBECTL=$BIN_DIR/kubectl
kc() { "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" "$@"; }

# ------------------------------------------------------------------ certificates
new_key() { openssl genrsa -out "$1" 2048 2>/dev/null; }

new_ca() { # NAME CN
	[ -s "$PKI/$1.crt" ] && return 0
	new_key "$PKI/$1.key"
	openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$PKI/$1.crt" 2>/dev/null
}

new_cert() { # NAME SUBJECT EXTENDED_KEY_USAGE CA [SUBJECT_ALT_NAMES]
	local name=$1 subject=$2 eku=$3 ca=$4 san=${5:-}
	[ -s "$PKI/$name.crt" ] && return 0
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -z "$san" ] || echo "subjectAltName=$san"
	} >"$PKI/$name.ext"
	new_key "$PKI/$name.key"
	openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt.tmp" 2>/dev/null
	mv -f "$PKI/$name.crt.tmp" "$PKI/$name.crt"
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
	new_ca ca spinscale-test-ca
	new_ca front-proxy-ca spinscale-test-front-proxy-ca
	# One serving certificate for every server. The aggregator checks
	# metrics-server's against the service name of the APIService; metrics-server
	# checks kwok's (the emulated kubelets) against 127.0.0.1.
	new_cert serving /CN=spinscale-test-serving serverAuth ca \
		"IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:metrics-server.kube-system.svc"
	# The aggregator checks the adapter's against its own service name; tests
	# that write metric values check it against 127.0.0.1.
	new_cert adapter-serving /CN=spinscale-test-custom-metrics-adapter serverAuth ca \
		"IP:127.0.0.1,DNS:localhost,DNS:custom-metrics-adapter.kube-system.svc"
	new_cert admin /O=system:masters/CN=spinscale-test-admin clientAuth ca
	new_cert front-proxy-client /CN=front-proxy-client clientAuth front-proxy-ca
	if [ ! -s "$PKI/sa.pub" ]; then
		new_key "$PKI/sa.key"
		openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	fi
}

write_kubeconfig() {
	cat >"$KUBECONFIG_FILE.tmp" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: spinscale-test
		  cluster:
		    server: https://$HOST:$APISERVER_PORT
		    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
		users:
		- name: spinscale-test-admin
		  user:
		    client-certificate-data: $(base64 -w0 <"$PKI/admin.crt")
		    client-key-data: $(base64 -w0 <"$PKI/admin.key")
		contexts:
		- name: spinscale-test
		  context:
		    cluster: spinscale-test
		    user: spinscale-test-admin
		current-context: spinscale-test
	EOF
	chmod 600 "$KUBECONFIG_FILE.tmp"
	mv -f "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

write_env() {
	{
		printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
		printf 'export SPINSCALE_CLUSTER_STATE=%q\n' "$STATE_DIR"
		printf 'export SPINSCALE_CLUSTER_BIN=%q\n' "$BIN_DIR"
		printf 'export SPINSCALE_CLUSTER_PORT_BASE=%s\n' "$PORT_BASE"
		printf 'export SPINSCALE_CLUSTER_APISERVER=https://%s:%s\n' "$HOST" "$APISERVER_PORT"
		printf 'export SPINSCALE_CLUSTER_ETCD=http://%s:%s\n' "$HOST" "$ETCD_PORT"
		printf 'export SPINSCALE_CLUSTER_KCM=https://%s:%s\n' "$HOST" "$KCM_PORT"
		printf 'export SPINSCALE_CLUSTER_SCHEDULER=https://%s:%s\n' "$HOST" "$SCHEDULER_PORT"
		printf 'export SPINSCALE_CLUSTER_KWOK=https://%s:%s\n' "$HOST" "$KWOK_PORT"
		printf 'export SPINSCALE_CLUSTER_METRICS_SERVER=https://%s:%s\n' "$HOST" "$METRICS_SERVER_PORT"
		printf 'export SPINSCALE_CLUSTER_CUSTOM_METRICS_ADAPTER=https://%s:%s\n' "$HOST" "$ADAPTER_PORT"
	} >"$STATE_DIR/env.tmp"
	mv -f "$STATE_DIR/env.tmp" "$STATE_DIR/env"
}

# ------------------------------------------------------------------ processes
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

start() { # NAME PORT... -- BINARY ARGS...
	local name=$1 pid port i
	shift
	local ports=()
	while [ "$1" != -- ]; do ports+=("$1"); shift; done
	shift
	if pid=$(component_pid "$name" "$STATE_DIR"); then
		log "$name already running (pid $pid)"
		return 0
	fi
	for port in "${ports[@]}"; do
		port_busy "$port" && die "port $port (for $name) is taken by another process; is another cluster using PORT_BASE=$PORT_BASE?"
	done
	rm -f "$PIDS/$name.pid"
	printf '==== %s starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.log"
	log "starting $name"
	# The pid file gets the shell's pid, which exec hands on to the component.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name.pid" "$@" \
		</dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
	for ((i = 0; i < 50; i++)); do
		[ -s "$PIDS/$name.pid" ] && return 0
		sleep 0.1
	done
	die "$name did not start (log: $LOGS/$name.log)"
}

wait_for() { # DESCRIPTION COMPONENT CMD...  (fails early if COMPONENT exits)
	local what=$1 name=$2 deadline=$((SECONDS + TIMEOUT))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ! component_pid "$name" "$STATE_DIR" >/dev/null; then
			tail -n 30 "$LOGS/$name.log" >&2 || true
			die "$name exited while waiting for $what (log: $LOGS/$name.log)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 30 "$LOGS/$name.log" >&2 || true
			die "timed out after ${TIMEOUT}s waiting for $what"
		fi
		sleep 0.2
	done
	log "$what: ok"
}

get_ok() { # URL: GET with the cluster CA and the admin certificate
	curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$1"
}

# ------------------------------------------------------------------ go
make_pki
write_kubeconfig
write_env

# *_EXTRA_ARGS are split on whitespace (no globbing).
read -r -a etcd_extra <<<"${ETCD_EXTRA_ARGS:-}"
read -r -a apiserver_extra <<<"${APISERVER_EXTRA_ARGS:-}"
read -r -a kcm_extra <<<"${KCM_EXTRA_ARGS:-}"
read -r -a scheduler_extra <<<"${SCHEDULER_EXTRA_ARGS:-}"
read -r -a kwok_extra <<<"${KWOK_EXTRA_ARGS:-}"
read -r -a metrics_server_extra <<<"${METRICS_SERVER_EXTRA_ARGS:-}"
read -r -a adapter_extra <<<"${CUSTOM_METRICS_ADAPTER_EXTRA_ARGS:-}"

# Flags shared by the components that talk to the apiserver and serve HTTPS.
client_server_flags=(
	--kubeconfig="$KUBECONFIG_FILE"
	--authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE"
	--bind-address="$HOST"
	--tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key"
	--profiling=false
)

if want etcd; then
	# Test data only: no fsync keeps etcd fast on slow disks.
	start etcd "$ETCD_PORT" "$ETCD_PEER_PORT" -- "$BIN_DIR/etcd" \
		--name=spinscale-test --data-dir="$STATE_DIR/etcd" \
		--listen-client-urls="http://$HOST:$ETCD_PORT" --advertise-client-urls="http://$HOST:$ETCD_PORT" \
		--listen-peer-urls="http://$HOST:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://$HOST:$ETCD_PEER_PORT" \
		--initial-cluster="spinscale-test=http://$HOST:$ETCD_PEER_PORT" \
		--quota-backend-bytes=2147483648 --snapshot-count=10000 --unsafe-no-fsync --log-level=warn \
		"${etcd_extra[@]}"
	wait_for "etcd /health" etcd curl -sf --max-time 2 "http://$HOST:$ETCD_PORT/health"
fi

if want kube-apiserver; then
	start kube-apiserver "$APISERVER_PORT" -- "$BIN_DIR/kube-apiserver" \
		--etcd-servers="http://$HOST:$ETCD_PORT" \
		--bind-address="$HOST" --advertise-address="$HOST" --secure-port="$APISERVER_PORT" \
		--tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
		--client-ca-file="$PKI/ca.crt" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
		--service-cluster-ip-range=10.96.0.0/16 \
		--authorization-mode=Node,RBAC \
		--allow-privileged=true \
		--endpoint-reconciler-type=none \
		--requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
		--requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User \
		--requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
		--profiling=false \
		"${apiserver_extra[@]}"
	wait_for "kube-apiserver /readyz" kube-apiserver get_ok "https://$HOST:$APISERVER_PORT/readyz"
fi

# These three only need the apiserver; start them together, then wait for each.
if want kube-controller-manager; then
	start kube-controller-manager "$KCM_PORT" -- "$BIN_DIR/kube-controller-manager" \
		"${client_server_flags[@]}" --secure-port="$KCM_PORT" \
		--leader-elect=false \
		--controllers="$KCM_CONTROLLERS" \
		--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--horizontal-pod-autoscaler-sync-period="$HPA_SYNC_PERIOD" \
		--kube-api-qps=100 --kube-api-burst=200 \
		"${kcm_extra[@]}"
fi
if want kube-scheduler; then
	start kube-scheduler "$SCHEDULER_PORT" -- "$BIN_DIR/kube-scheduler" \
		"${client_server_flags[@]}" --secure-port="$SCHEDULER_PORT" \
		--leader-elect=false \
		--kube-api-qps=100 --kube-api-burst=200 \
		"${scheduler_extra[@]}"
fi
if want kwok; then
	[ -s "$BIN_DIR/kwok-config.yaml" ] || die "$BIN_DIR/kwok-config.yaml is missing: run hack/cluster/build.sh $BIN_DIR"
	# The pod-ready stage waits as long as the pod's annotation
	# pod-ready.stage.kwok.x-k8s.io/delay says ("2s"; none: at once), so a
	# test can give a pod a start-up time.
	awk '
		/^  name: / { stage = $2 }
		stage == "pod-ready" && /^  next:/ && !done {
			print "  delay:"
			print "    durationMilliseconds: 0"
			print "    durationFrom:"
			print "      expressionFrom: '\''.metadata.annotations[\"pod-ready.stage.kwok.x-k8s.io/delay\"]'\''"
			done = 1
		}
		{ print }
		END { if (!done) exit 1 }
	' "$BIN_DIR/kwok-config.yaml" >"$STATE_DIR/kwok.yaml.tmp" ||
		die "$BIN_DIR/kwok-config.yaml has no pod-ready stage"
	mv -f "$STATE_DIR/kwok.yaml.tmp" "$STATE_DIR/kwok.yaml"
	# kwok manages only nodes annotated kwok.x-k8s.io/node=fake, fills in
	# InternalIP 127.0.0.1 and points each node's kubelet port at itself, where
	# it serves /metrics/nodes/NODE/metrics/resource.
	start kwok "$KWOK_PORT" -- "$BIN_DIR/kwok" \
		--kubeconfig="$KUBECONFIG_FILE" \
		--config="$STATE_DIR/kwok.yaml" \
		--manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--node-ip="$HOST" --node-port="$KWOK_PORT" --server-address="$HOST:$KWOK_PORT" \
		--tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
		--node-lease-duration-seconds=40 \
		--cidr=10.244.0.1/16 \
		"${kwok_extra[@]}"
fi
for c in kube-controller-manager kube-scheduler kwok; do
	if want "$c"; then
		wait_for "$c /healthz" "$c" get_ok "https://$HOST:$(port_of "$c" "$PORT_BASE")/healthz"
	fi
done

# ------------------------------------------------------------------ fake nodes
node_manifests() {
	local i
	for ((i = 0; i < NODES; i++)); do
		cat <<-EOF
			---
			apiVersion: v1
			kind: Node
			metadata:
			  name: kwok-node-$i
			  annotations:
			    kwok.x-k8s.io/node: fake
			    node.alpha.kubernetes.io/ttl: "0"
			    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$i/metrics/resource
			  labels:
			    type: kwok
			    kubernetes.io/hostname: kwok-node-$i
			    kubernetes.io/os: linux
			    kubernetes.io/arch: amd64
			    node-role.kubernetes.io/agent: ""
			status:
			  allocatable: {cpu: "$NODE_CPU", memory: "$NODE_MEMORY", pods: "$NODE_PODS"}
			  capacity: {cpu: "$NODE_CPU", memory: "$NODE_MEMORY", pods: "$NODE_PODS"}
		EOF
	done
}
nodes_ready() {
	local n
	n=$(kc get nodes -l type=kwok \
		-o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
		grep -c '^True$' || true)
	[ "${n:-0}" -ge "$NODES" ]
}
if want kwok && [ "$NODES" -gt 0 ]; then
	node_manifests | kc apply -f - >/dev/null
	wait_for "$NODES fake node(s) Ready" kwok nodes_ready
fi

if want kube-controller-manager; then
	wait_for "service account default/default" kube-controller-manager \
		kc get serviceaccount default -n default
fi

# ------------------------------------------------------------------ metrics-server
apiservice_available() {
	kc get apiservice v1beta1.metrics.k8s.io \
		-o jsonpath='{.status.conditions[?(@.type=="Available")].status}' | grep -qx True
}
if want metrics-server; then
	ms_flags=(--metric-resolution="$METRIC_RESOLUTION")
	# metrics-server insists on resolution * 0.9 >= kubelet request timeout (10s).
	if [[ $METRIC_RESOLUTION =~ ^([0-9]+)s$ ]] && [ "${BASH_REMATCH[1]}" -lt 12 ] &&
		[[ " ${METRICS_SERVER_EXTRA_ARGS:-} " != *--kubelet-request-timeout* ]]; then
		ms_flags+=(--kubelet-request-timeout="$((BASH_REMATCH[1] * 9 / 10))s")
	fi
	start metrics-server "$METRICS_SERVER_PORT" -- "$BIN_DIR/metrics-server" \
		"${client_server_flags[@]}" --secure-port="$METRICS_SERVER_PORT" \
		--kubelet-preferred-address-types=InternalIP \
		--kubelet-use-node-status-port \
		--kubelet-certificate-authority="$PKI/ca.crt" \
		"${ms_flags[@]}" \
		"${metrics_server_extra[@]}"
	# The aggregator dials an ExternalName service at externalName:port, so the
	# APIService works without a Service IP or kube-proxy.
	kc apply -f - >/dev/null <<-EOF
		apiVersion: v1
		kind: Service
		metadata:
		  name: metrics-server
		  namespace: kube-system
		spec:
		  type: ExternalName
		  externalName: $HOST
		---
		apiVersion: apiregistration.k8s.io/v1
		kind: APIService
		metadata:
		  name: v1beta1.metrics.k8s.io
		spec:
		  group: metrics.k8s.io
		  version: v1beta1
		  groupPriorityMinimum: 100
		  versionPriority: 100
		  caBundle: $(base64 -w0 <"$PKI/ca.crt")
		  service:
		    name: metrics-server
		    namespace: kube-system
		    port: $METRICS_SERVER_PORT
	EOF
	# Not /readyz: it stays false until some pod reports non-zero usage.
	wait_for "metrics-server /livez" metrics-server get_ok "https://$HOST:$METRICS_SERVER_PORT/livez"
	wait_for "APIService v1beta1.metrics.k8s.io Available" metrics-server apiservice_available
fi

# ------------------------------------------------------------------ custom-metrics-adapter
adapter_apiservices=(v1beta2.custom.metrics.k8s.io v1beta1.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io)
adapter_available() {
	local a
	for a in "${adapter_apiservices[@]}"; do
		kc get apiservice "$a" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' | grep -qx True || return 1
	done
}
# APISERVICE GROUP VERSION VERSION_PRIORITY: one APIService served by the adapter.
adapter_apiservice() {
	cat <<-EOF
		---
		apiVersion: apiregistration.k8s.io/v1
		kind: APIService
		metadata:
		  name: $1
		spec:
		  group: $2
		  version: $3
		  groupPriorityMinimum: 100
		  versionPriority: $4
		  caBundle: $(base64 -w0 <"$PKI/ca.crt")
		  service:
		    name: custom-metrics-adapter
		    namespace: kube-system
		    port: $ADAPTER_PORT
	EOF
}
if want custom-metrics-adapter; then
	# The same delegated authentication and authorization as metrics-server;
	# the adapter reads objects (pods of a selector) with the admin kubeconfig.
	start custom-metrics-adapter "$ADAPTER_PORT" -- "$BIN_DIR/custom-metrics-adapter" \
		--lister-kubeconfig="$KUBECONFIG_FILE" \
		--authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
		--bind-address="$HOST" --secure-port="$ADAPTER_PORT" \
		--tls-cert-file="$PKI/adapter-serving.crt" --tls-private-key-file="$PKI/adapter-serving.key" \
		--profiling=false \
		"${adapter_extra[@]}"
	{
		cat <<-EOF
			apiVersion: v1
			kind: Service
			metadata:
			  name: custom-metrics-adapter
			  namespace: kube-system
			spec:
			  type: ExternalName
			  externalName: $HOST
		EOF
		adapter_apiservice v1beta2.custom.metrics.k8s.io custom.metrics.k8s.io v1beta2 200
		adapter_apiservice v1beta1.custom.metrics.k8s.io custom.metrics.k8s.io v1beta1 100
		adapter_apiservice v1beta1.external.metrics.k8s.io external.metrics.k8s.io v1beta1 100
	} | kc apply -f - >/dev/null
	wait_for "custom-metrics-adapter /readyz" custom-metrics-adapter get_ok "https://$HOST:$ADAPTER_PORT/readyz"
	wait_for "APIServices of custom.metrics.k8s.io and external.metrics.k8s.io Available" \
		custom-metrics-adapter adapter_available
fi

log "cluster up (${wanted[*]}); use: source $STATE_DIR/env"
