#!/usr/bin/env bash
# Install what kinfer needs to build and test, from Debian's packages, and
# check the Go toolchain that builds the local control plane. Idempotent:
# installs only what is missing, and says what it is doing.
set -euo pipefail

pkgs=(build-essential cmake pkg-config ca-certificates curl openssl
	libcurl4-openssl-dev libjson-c-dev libyaml-dev liburcu-dev
	libcmocka-dev libmicrohttpd-dev libgnutls28-dev valgrind python3 iproute2 procps bc clang
	# tests/format.sh (.clang-format)
	clang-format
	prometheus
	# The real node (tests/cluster/up.sh --real-node) and its images
	# (tests/cluster/images.sh): containers, pod network, image root fs.
	containerd runc containernetworking-plugins nftables mmdebstrap util-linux)

say() { printf 'kinfer-deps: %s\n' "$*" >&2; }

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -q >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

# The control plane (Kubernetes 1.33) needs Go >= 1.24. Use the machine's Go
# when it is new enough; otherwise fetch the toolchain module from the Go
# module proxy (the same route `GOTOOLCHAIN=go1.24.x` takes).
go_ok() {
	command -v go >/dev/null 2>&1 || return 1
	local v; v=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
	[ "${major:-0}" -gt 1 ] || { [ "${major:-0}" -eq 1 ] && [ "${minor:-0}" -ge 24 ]; }
}
if ! go_ok; then
	ver=go1.24.11
	dest=${KINFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinfer}/go-$ver
	if [ ! -x "$dest/bin/go" ]; then
		say "no Go >= 1.24 here: fetching the $ver toolchain module"
		proxy=$(printf '%s' "${GOPROXY:-https://proxy.golang.org}" | cut -d, -f1)
		tmp=$(mktemp -d)
		curl -fsSL -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-$ver.linux-amd64.zip"
		python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$tmp/go.zip" "$tmp/x"
		chmod -R +x "$tmp/x"/golang.org/toolchain*/bin "$tmp/x"/golang.org/toolchain*/pkg/tool
		mkdir -p "$(dirname "$dest")"
		mv "$tmp/x"/golang.org/toolchain* "$dest"
		rm -rf "$tmp"
	fi
	echo "export PATH=$dest/bin:\$PATH"
fi
