#!/usr/bin/env bash
# build.sh - build (or reuse) the binaries of Spinscale's local test cluster.
#
# Usage: hack/cluster/build.sh [BIN_DIR]
#   BIN_DIR defaults to $SPINSCALE_CLUSTER_BIN or ~/.cache/spinscale/cluster/bin
#
# Everything is compiled from Go modules (no release tarballs, no container
# images), so the only network access needed is GOPROXY. A binary is rebuilt
# only when it is missing or `go version -m` reports a different module
# version; a run with everything cached takes about a second.
#
# Built into BIN_DIR:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl  k8s.io/kubernetes (K8S_VERSION)
#   etcd            go.etcd.io/etcd/server/v3      (ETCD_VERSION)
#   kwok            sigs.k8s.io/kwok/cmd/kwok      (KWOK_VERSION)
#   metrics-server  sigs.k8s.io/metrics-server     (METRICS_SERVER_VERSION)
#   custom-metrics-adapter  hack/cluster/metrics-adapter, a module of this
#                   repository on sigs.k8s.io/custom-metrics-apiserver (the
#                   version its go.mod pins, v1.37.0)
#   kwok-config.yaml  kwok Stage/Metric/ClusterResourceUsage objects taken from the kwok module
#
# Environment (defaults in brackets):
#   K8S_VERSION [v1.37.2]  ETCD_VERSION [v3.6.16]  KWOK_VERSION [v0.8.0]
#   METRICS_SERVER_VERSION [v0.8.0]  GO [go]
# Wall times of real builds are appended to BIN_DIR/build-times.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

BIN_DIR=${1:-$(default_bin_dir)}
K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.8.0}
GO=${GO:-go}

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# up.sh needs these; install them here so a fresh machine is ready after one build.
ensure_tools openssl curl

command -v "$GO" >/dev/null 2>&1 || die "$GO not found"
mkdir -p "$BIN_DIR"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
SRC_DIR=$BIN_DIR/.src
TIMES=$BIN_DIR/build-times.log
mkdir -p "$SRC_DIR"

# One build at a time per BIN_DIR (parallel test jobs may all call build.sh).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$BIN_DIR/.build.lock"
	flock -n 9 || { log "another build.sh is running in $BIN_DIR; waiting"; flock 9; }
fi

# The wrapper modules live under BIN_DIR, which may sit inside some other
# module or workspace: keep both out of the way. The flags stay identical from
# run to run so that Go's build cache is reused; only the link step differs.
export GOWORK=off
export GOFLAGS=${GOFLAGS:--buildvcs=false}

# has_version BINARY MODULE VERSION: BINARY exists and was built from MODULE@VERSION.
has_version() {
	[ -x "$1" ] || return 1
	"$GO" version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '
		($1 == "mod" || $1 == "dep") && $2 == m && $3 == v { ok = 1 }
		END { exit ok ? 0 : 1 }'
}

# mod_field MODULE@VERSION FIELD: download a module and print one field of
# `go mod download -json` (Dir, GoMod, ...).
mod_field() {
	local out
	out=$(cd "$SRC_DIR" && "$GO" mod download -json "$1" |
		sed -n 's/^[[:space:]]*"'"$2"'": "\(.*\)",\{0,1\}$/\1/p')
	[ -n "$out" ] || die "could not download $1"
	echo "$out"
}

# timed NAME CMD...: run one build step, log and record its wall time.
timed() {
	local name=$1 start secs
	shift
	start=$(date +%s)
	"$@"
	secs=$(($(date +%s) - start))
	printf '%s\t%ss\t%s\n' "$name" "$secs" "$(date -u +%FT%TZ)" >>"$TIMES"
	log "$name built in ${secs}s"
}

# tidy_module DIR: resolve a generated wrapper module once.
tidy_module() {
	(cd "$1" && "$GO" mod tidy) >"$1/tidy.log" 2>&1 || {
		cat "$1/tidy.log" >&2
		rm -f "$1/go.sum"
		die "go mod tidy failed in $1"
	}
}

# ------------------------------------------------------------ Kubernetes
# k8s.io/kubernetes is not meant to be used as a module: its go.mod replaces
# every k8s.io/* staging module with ./staging/src/... . A generated wrapper
# module requires it and points each staging module at the published
# v0.<minor>.<patch> tag instead.
k8s_missing=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
	has_version "$BIN_DIR/$b" k8s.io/kubernetes "$K8S_VERSION" || k8s_missing+=("$b")
done
if [ ${#k8s_missing[@]} -gt 0 ]; then
	minor_patch=${K8S_VERSION#v1.}
	mod=$SRC_DIR/kubernetes-$K8S_VERSION
	mkdir -p "$mod"
	if [ ! -s "$mod/go.sum" ]; then
		log "preparing wrapper module for k8s.io/kubernetes $K8S_VERSION"
		k8s_gomod=$(mod_field "k8s.io/kubernetes@$K8S_VERSION" GoMod)
		{
			printf 'module spinscale.local/cluster/kubernetes\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
			awk -v v="v0.$minor_patch" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "\t" $1 " => " $1 " " v }' "$k8s_gomod" | sort -u
			printf ')\n'
		} >"$mod/go.mod"
		cat >"$mod/tools.go" <<-'EOF'
			//go:build tools

			package tools

			import (
				_ "k8s.io/kubernetes/cmd/kube-apiserver"
				_ "k8s.io/kubernetes/cmd/kube-controller-manager"
				_ "k8s.io/kubernetes/cmd/kube-scheduler"
				_ "k8s.io/kubernetes/cmd/kubectl"
			)
		EOF
		tidy_module "$mod"
	fi
	# Without these the binaries report v0.0.0-master, and kubectl warns about skew.
	minor=${minor_patch%%.*}
	ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
		ldflags+=" -X $p.gitTreeState=clean -X $p.gitCommit=0000000000000000000000000000000000000000"
		ldflags+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	done
	note=" (the first one compiles most of Kubernetes: 10+ minutes on 2 cores)"
	for b in "${k8s_missing[@]}"; do
		log "building $b $K8S_VERSION$note"
		note=
		# shellcheck disable=SC2016 # expanded by the inner shell
		timed "$b" bash -c 'cd "$1" && "$2" build -ldflags "$3" -o "$4.tmp" "k8s.io/kubernetes/cmd/$5"' \
			_ "$mod" "$GO" "$ldflags" "$BIN_DIR/$b" "$b"
		mv -f "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
	done
fi

# ------------------------------------------------------------ etcd
# Built from the server module rather than taken from the distribution: the
# apiserver needs etcd >= 3.5.13 (watch progress requests) and Debian ships 3.4.
if ! has_version "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"; then
	mod=$SRC_DIR/etcd-$ETCD_VERSION
	mkdir -p "$mod"
	if [ ! -s "$mod/go.sum" ]; then
		log "preparing wrapper module for etcd $ETCD_VERSION"
		printf 'module spinscale.local/cluster/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
		printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$mod/tools.go"
		tidy_module "$mod"
	fi
	log "building etcd $ETCD_VERSION"
	# shellcheck disable=SC2016 # expanded by the inner shell
	timed etcd bash -c 'cd "$1" && "$2" build -ldflags "-s -w" -o "$3.tmp" go.etcd.io/etcd/server/v3' \
		_ "$mod" "$GO" "$BIN_DIR/etcd"
	mv -f "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
fi

# ------------------------------------------------------------ kwok, metrics-server
# `go install module/cmd@version` builds each tool with exactly the dependency
# versions its own go.mod pins.
go_install() { # NAME MODULE VERSION PACKAGE LDFLAGS
	local name=$1 module=$2 version=$3 pkg=$4 ldflags=$5 tmp
	has_version "$BIN_DIR/$name" "$module" "$version" && return 0
	log "building $name $version"
	tmp=$BIN_DIR/.install-$name
	rm -rf "$tmp"
	mkdir -p "$tmp"
	timed "$name" env GOBIN="$tmp" "$GO" install -ldflags "$ldflags" "$pkg@$version"
	mv -f "$tmp/$name" "$BIN_DIR/$name"
	rm -rf "$tmp"
}
go_install kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
	"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
go_install metrics-server sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" \
	sigs.k8s.io/metrics-server/cmd/metrics-server \
	"-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"

# ------------------------------------------------------------ custom-metrics-adapter
# Built from this repository's own module, so the module version says nothing:
# the binary is rebuilt whenever the hash of its sources differs from the one
# recorded at the last build.
adapter_src=$HERE/metrics-adapter
adapter_sum=$(cd "$adapter_src" && cat go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1)
if [ ! -x "$BIN_DIR/custom-metrics-adapter" ] ||
	[ "$(cat "$BIN_DIR/custom-metrics-adapter.sha256" 2>/dev/null)" != "$adapter_sum" ]; then
	log "building custom-metrics-adapter"
	# shellcheck disable=SC2016 # expanded by the inner shell
	timed custom-metrics-adapter bash -c 'cd "$1" && "$2" build -ldflags "-s -w" -o "$3.tmp" .' \
		_ "$adapter_src" "$GO" "$BIN_DIR/custom-metrics-adapter"
	mv -f "$BIN_DIR/custom-metrics-adapter.tmp" "$BIN_DIR/custom-metrics-adapter"
	echo "$adapter_sum" >"$BIN_DIR/custom-metrics-adapter.sha256"
fi

# ------------------------------------------------------------ kwok configuration
# kwok only does what its Stage/Metric objects tell it. Assemble one config
# from the YAML shipped in the kwok module: fast node and pod lifecycles, node
# heartbeats through leases, the emulated kubelet /metrics/resource endpoint
# that metrics-server scrapes, and CPU/memory usage read from pod annotations.
cfg=$BIN_DIR/kwok-config-$KWOK_VERSION.yaml
if [ ! -s "$cfg" ]; then
	kwok_dir=$(mod_field "sigs.k8s.io/kwok@$KWOK_VERSION" Dir)
	: >"$cfg.tmp"
	for f in \
		kustomize/stage/node/fast/node-initialize.yaml \
		kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		kustomize/stage/pod/fast/pod-ready.yaml \
		kustomize/stage/pod/fast/pod-complete.yaml \
		kustomize/stage/pod/fast/pod-delete.yaml \
		kustomize/metrics/resource/metrics-resource.yaml \
		kustomize/metrics/usage/usage-from-annotation.yaml; do
		[ -s "$kwok_dir/$f" ] || die "kwok $KWOK_VERSION has no $f"
		echo "---" >>"$cfg.tmp"
		grep -v '^---[[:space:]]*$' "$kwok_dir/$f" >>"$cfg.tmp"
	done
	mv -f "$cfg.tmp" "$cfg"
	log "wrote $cfg"
fi
ln -sfn "$(basename "$cfg")" "$BIN_DIR/kwok-config.yaml"

log "binaries in $BIN_DIR are up to date"
