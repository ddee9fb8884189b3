#!/usr/bin/env bash
# Build the real local control plane from Go modules, once per machine.
#
# Binaries land in $KINFER_CACHE/controlplane/<component>-<version>/ and are
# reused by every later run; a folder is published by an atomic rename only
# when its build succeeded, so an interrupted build leaves nothing half-made.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#       from k8s.io/kubernetes, through a small tools module that replaces
#       every staging module with its published v0.x version (go install
#       cannot build k8s.io/kubernetes directly because of its replaces);
#   kubelet, kube-proxy (the real node, up.sh --real-node), the same way
#       into kubernetes-node-<version>/;
#   etcd from go.etcd.io/etcd/server/v3;
#   kwok from sigs.k8s.io/kwok/cmd/kwok.
#
# Prints the folder holding all binaries (a 'bin' folder of symlinks) on the
# last line of stdout. Progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"

cache=${KINFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinfer}
cp_dir=$cache/controlplane
mkdir -p "$cp_dir"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

say() { printf 'kinfer-build: %s\n' "$*" >&2; }

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		say "installing Go from Debian (golang-go)"
		apt-get install -y golang-go >&2
	fi
}

# build_k8s OUT CMD...: the named k8s.io/kubernetes/cmd/CMD binaries into
# $cp_dir/OUT (control plane: kubernetes-<v>; real node: kubernetes-node-<v>).
build_k8s() {
	local out=$cp_dir/$1-$K8S_VERSION
	shift
	[ -x "$out/$1" ] && return 0
	need_go
	local staging=v0.${K8S_VERSION#v1.}
	local work; work=$(mktemp -d "$cp_dir/.k8s-build.XXXXXX")
	local pkgs=() c
	for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	say "building kubernetes $K8S_VERSION $* (staging $staging) in $work; with a cold Go cache about 4 minutes on 2 cores"
	local t0=$SECONDS
	(
		cd "$work"
		cat > go.mod <<MOD
module kinfer.io/controlplane-tools

go 1.24

require k8s.io/kubernetes $K8S_VERSION
MOD
		local gomod
		gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
		[ -f "$gomod" ] || { say "cannot download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
		{
			echo "replace ("
			sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
			echo ")"
		} >> go.mod
		{
			printf '//go:build tools\n\npackage tools\n\nimport (\n'
			printf '\t_ "%s"\n' "${pkgs[@]}"
			printf ')\n'
		} > tools.go
		go mod tidy >&2
		local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
		local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version
		local ld="-s -w"
		for p in $pkg $cpkg; do
			ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
			ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
		done
		mkdir -p bin
		go build -trimpath -ldflags "$ld" -o bin/ "${pkgs[@]}" >&2
	)
	rm -rf "$out"
	mv "$work/bin" "$out"
	rm -rf "$work"
	say "kubernetes $K8S_VERSION $* built in $((SECONDS - t0)) s"
}

# build_simple NAME VERSION MODULE PACKAGE: a tools module with one require.
build_simple() {
	local name=$1 version=$2 module=$3 pkg=$4
	local out=$cp_dir/$name-$version
	[ -x "$out/$name" ] && return 0
	need_go
	local work; work=$(mktemp -d "$cp_dir/.$name-build.XXXXXX")
	say "building $name $version"
	local t0=$SECONDS
	(
		cd "$work"
		printf 'module kinfer.io/%s-tools\n\ngo 1.24\n\nrequire %s %s\n' "$name" "$module" "$version" > go.mod
		printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > tools.go
		go mod tidy >&2
		mkdir -p bin
		go build -trimpath -ldflags "-s -w" -o "bin/$name" "$pkg" >&2
	)
	rm -rf "$out"
	mv "$work/bin" "$out"
	rm -rf "$work"
	say "$name $version built in $((SECONDS - t0)) s"
}

build_simple etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
build_simple kwok "$KWOK_VERSION" sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok
build_k8s kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl
build_k8s kubernetes-node kubelet kube-proxy

# One folder of symlinks for PATH, keyed by all versions together.
bin=$cp_dir/bin-k8s-$K8S_VERSION-node-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
if [ ! -d "$bin" ]; then
	tmp=$(mktemp -d "$cp_dir/.bin.XXXXXX")
	for f in "$cp_dir/kubernetes-$K8S_VERSION"/* "$cp_dir/kubernetes-node-$K8S_VERSION"/*; do ln -s "$f" "$tmp/"; done
	ln -s "$cp_dir/etcd-$ETCD_VERSION/etcd" "$tmp/etcd"
	ln -s "$cp_dir/kwok-$KWOK_VERSION/kwok" "$tmp/kwok"
	mv -T "$tmp" "$bin"
fi
echo "$bin"
