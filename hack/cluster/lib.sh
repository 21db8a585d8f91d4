# shellcheck shell=bash
# lib.sh - helpers shared by Spinscale's local test-cluster scripts (sourced, not run).
#
# Spinscale's integration tests and `make demo` run against a real control plane
# built from source (see README.md in this directory). Every component of one
# cluster keeps its state under a single STATE_DIR and listens on 127.0.0.1 at
# a fixed offset from PORT_BASE.

# Start order; down.sh stops in the reverse order.
CLUSTER_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server custom-metrics-adapter)

# shellcheck disable=SC2034 # used by the scripts that source this file
CLUSTER_HOST=127.0.0.1
# shellcheck disable=SC2034
CLUSTER_DEFAULT_PORT_BASE=17443

default_bin_dir() { echo "${SPINSCALE_CLUSTER_BIN:-$HOME/.cache/spinscale/cluster/bin}"; }

# port_of COMPONENT PORT_BASE: the fixed port of one component.
port_of() {
	case $1 in
	kube-apiserver) echo "$2" ;;
	etcd) echo $(($2 + 1)) ;;
	etcd-peer) echo $(($2 + 2)) ;;
	kube-controller-manager) echo $(($2 + 3)) ;;
	kube-scheduler) echo $(($2 + 4)) ;;
	kwok) echo $(($2 + 5)) ;;
	metrics-server) echo $(($2 + 6)) ;;
	custom-metrics-adapter) echo $(($2 + 7)) ;;
	*) return 1 ;;
	esac
}

is_component() {
	local c
	for c in "${CLUSTER_COMPONENTS[@]}"; do [ "$c" = "$1" ] && return 0; done
	return 1
}

# owned_pid PID STATE_DIR: true when PID is alive and its command line mentions
# STATE_DIR/ (every component gets at least one path below STATE_DIR), so a pid
# that the kernel has recycled for an unrelated process is never touched.
owned_pid() {
	local cmdline
	[ -r "/proc/$1/cmdline" ] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	case $cmdline in *"$2/"*) return 0 ;; esac
	return 1
}

# component_pid NAME STATE_DIR: print the pid of a running component, or fail.
component_pid() {
	local f=$2/pids/$1.pid pid
	[ -s "$f" ] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	owned_pid "$pid" "$2" || return 1
	echo "$pid"
}

# ensure_tools TOOL...: install missing command-line tools with apt-get
# (fresh CI machines may lack them). The package index is refreshed only if the
# first install attempt fails.
ensure_tools() {
	local missing=() t sudo=()
	for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null 2>&1 || {
		echo "missing tools: ${missing[*]} (and no apt-get to install them)" >&2
		return 1
	}
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	echo "installing ${missing[*]} with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		"${sudo[@]}" apt-get update -qq >/dev/null
		"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}
