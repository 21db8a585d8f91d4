#!/usr/bin/env bash
# down.sh - stop the processes of Spinscale's local test cluster in STATE_DIR.
#
# Usage: hack/cluster/down.sh STATE_DIR [--purge] [--only COMPONENT...]
#   --only C...  stop just these components (e.g. metrics-server, kube-apiserver);
#                up.sh STATE_DIR starts them again
#   --purge      delete STATE_DIR afterwards (not with --only)
#
# Only the pids recorded in STATE_DIR/pids are signalled, and only while that
# process's command line still refers to STATE_DIR, so nothing else on the
# machine (another cluster, a recycled pid) is ever touched. Each process gets
# SIGTERM, then SIGKILL if it is still there after STOP_TIMEOUT seconds [5].
# (kube-apiserver stops listening at once but, while clients still hold
# watches, waits up to its request timeout (60s) before exiting; killing it is
# harmless, its state is in etcd.)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

usage() { echo "usage: down.sh STATE_DIR [--purge] [--only COMPONENT...]" >&2; exit 2; }
log() { echo "[down] $*" >&2; }

[ $# -ge 1 ] || usage
STATE_DIR=$1
shift
STOP_TIMEOUT=${STOP_TIMEOUT:-5}
purge=0
only=()
in_only=0
for arg in "$@"; do
	case $arg in
	--purge) purge=1; in_only=0 ;;
	--only) in_only=1 ;;
	-*) usage ;;
	*)
		[ "$in_only" = 1 ] || usage
		is_component "$arg" || { log "unknown component '$arg' (known: ${CLUSTER_COMPONENTS[*]})"; exit 2; }
		only+=("$arg")
		;;
	esac
done
[ "$in_only" = 0 ] || [ ${#only[@]} -gt 0 ] || usage
if [ "$purge" = 1 ] && [ ${#only[@]} -gt 0 ]; then
	log "--purge cannot be combined with --only"
	exit 2
fi

if [ ! -d "$STATE_DIR" ]; then
	log "$STATE_DIR does not exist; nothing to stop"
	exit 0
fi
STATE_DIR=$(cd "$STATE_DIR" && pwd)
PIDS=$STATE_DIR/pids

stop() {
	local name=$1 pid i
	if ! pid=$(component_pid "$name" "$STATE_DIR"); then
		rm -f "$PIDS/$name.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		owned_pid "$pid" "$STATE_DIR" || break
		sleep 0.1
	done
	if owned_pid "$pid" "$STATE_DIR"; then
		log "$name (pid $pid) still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			owned_pid "$pid" "$STATE_DIR" || break
			sleep 0.1
		done
	fi
	rm -f "$PIDS/$name.pid"
	log "stopped $name (pid $pid)"
}

# Reverse start order: etcd goes last so the apiserver can shut down cleanly.
targets=()
for ((i = ${#CLUSTER_COMPONENTS[@]} - 1; i >= 0; i--)); do
	c=${CLUSTER_COMPONENTS[i]}
	if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $c "* ]]; then targets+=("$c"); fi
done
for c in "${targets[@]}"; do stop "$c"; done

if [ ${#only[@]} -eq 0 ] && [ -d "$PIDS" ]; then
	# Whatever else was registered next to the components.
	for f in "$PIDS"/*.pid; do
		[ -e "$f" ] || continue
		stop "$(basename "$f" .pid)"
	done
fi

if [ "$purge" = 1 ]; then
	# Refuse to delete anything that does not look like a cluster state directory.
	if [ "$STATE_DIR" = / ] || [ "$STATE_DIR" = "$HOME" ] ||
		{ [ ! -d "$PIDS" ] && [ ! -e "$STATE_DIR/port-base" ] && [ -n "$(ls -A "$STATE_DIR")" ]; }; then
		log "$STATE_DIR does not look like a cluster state directory; not deleting it"
		exit 1
	fi
	rm -rf "$STATE_DIR"
	log "removed $STATE_DIR"
fi
