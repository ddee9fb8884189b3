#!/usr/bin/env bash
# Build the real node's images from Debian's packages, without a registry or
# a container engine, cached per machine by content:
#
#   base      a Debian bookworm root file system (mmdebstrap, variant
#             essential) with exactly the runtime packages of the last stage
#             of manifests/Dockerfile;
#   operator  base + kinfer-operator, with the USER, ENTRYPOINT, CMD and
#             EXPOSE of manifests/Dockerfile; the binary is built here on
#             Debian bookworm with the -dev packages of tests/deps.sh, as the
#             Dockerfile's build stage does in debian:bookworm;
#   model-sim base + kinfer-model-sim (tests/sim), entrypoint `serve`;
#   pause     one static binary (images/pause.c), the pods' sandbox.
#
# Each is a docker-archive (images/archive.py) that tests/cluster/up.sh
# --real-node imports with `ctr -n k8s.io images import`. The base is keyed
# by its package list and mirrors, the others by their binaries' bytes; a
# set is published by an atomic rename. Prints the folder of the set (tars
# and images.env: PAUSE_IMAGE, OPERATOR_IMAGE, SIM_IMAGE) on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${KINFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinfer}/images
mkdir -p "$cache"
say() { printf 'kinfer-images: %s\n' "$*" >&2; }

OPERATOR_IMAGE=docker.io/kinfer/kinfer-operator:0.1.0
SIM_IMAGE=docker.io/kinfer/model-sim:0.1.0
PAUSE_IMAGE=docker.io/kinfer/pause:local
MIRRORS=("deb http://deb.debian.org/debian bookworm main"
	"deb http://deb.debian.org/debian bookworm-updates main"
	"deb http://deb.debian.org/debian-security bookworm-security main")

# dockerfile KEY: from the last stage of manifests/Dockerfile, KEY packages
# (the apt-get install list), user, entrypoint, cmd, port (EXPOSE).
dockerfile() {
	python3 - "$root/manifests/Dockerfile" "$1" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stage = re.split(r"(?m)^FROM ", text)[-1]
want = sys.argv[2]
for line in stage.splitlines():
    word, _, rest = line.strip().partition(" ")
    if want == "packages" and word == "RUN":
        for part in rest.split("&&"):
            if "apt-get install" in part:
                print(" ".join(t for t in part.split()[part.split().index("install") + 1:]
                               if not t.startswith("-")))
    elif want == "user" and word == "USER":
        print(rest.strip())
    elif want in ("entrypoint", "cmd") and word == want.upper():
        print(json.dumps(json.loads(rest)))
    elif want == "port" and word == "EXPOSE":
        print(rest.split()[0])
PY
}

# layer OUT DIR: DIR as a layer tar, owned by root, epoch times.
layer() {
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$2" -cf "$1" .
}

# base: the root file system tar, built once per package list.
build_base() {
	local pkgs key out tmp
	pkgs=$(dockerfile packages | tr ' ' '\n' | sort -u | tr '\n' ',' | sed 's/,$//')
	[ -n "$pkgs" ] || { say "no runtime packages found in manifests/Dockerfile"; exit 1; }
	key=$(printf '%s\n' "base-v1" "$pkgs" "${MIRRORS[@]}" | sha256sum | cut -c1-16)
	out=$cache/base-$key.tar
	if [ ! -f "$out" ]; then
		say "building the base root fs (Debian bookworm, essential + $pkgs); about a minute"
		tmp=$(mktemp "$cache/.base.XXXXXX.tar")
		mmdebstrap --mode=root --variant=essential --include="$pkgs" --format=tar \
			--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
			bookworm "$tmp" "${MIRRORS[@]}" >&2 2>"$cache/.base.log" ||
			{ say "mmdebstrap failed:"; tail -n 20 "$cache/.base.log" >&2; rm -f "$tmp"; exit 1; }
		mv "$tmp" "$out"
	fi
	base_tar=$out
	base_key=$key
}

# binaries: kinfer-operator and kinfer-model-sim, Release, in build-images/.
build_binaries() {
	local b=$root/build-images
	say "building kinfer-operator and kinfer-model-sim (Release) in $b"
	cmake -S "$root" -B "$b" -DCMAKE_BUILD_TYPE=Release -DKINFER_BENCH=OFF >/dev/null
	cmake --build "$b" -j "$(nproc)" --target kinfer-operator kinfer-model-sim kinfer-loadgen >/dev/null
	bins=$b/stage
	rm -rf "$bins"
	mkdir -p "$bins/operator/usr/local/bin" "$bins/sim/usr/local/bin" "$bins/pause"
	install -m 0755 -s "$b/kinfer-operator" "$bins/operator/usr/local/bin/kinfer-operator"
	install -m 0755 -s "$b/tests/sim/kinfer-model-sim" "$bins/sim/usr/local/bin/kinfer-model-sim"
	cc -static -O2 -Wall -Wextra -Werror -o "$bins/pause/pause" "$here/images/pause.c"
	strip "$bins/pause/pause"
}

# check_libs DIR BIN: BIN, put on the base, finds every library it needs.
check_libs() {
	local r
	r=$(mktemp -d "$cache/.check.XXXXXX")
	tar -C "$r" -xf "$base_tar" ./usr/lib ./lib ./lib64 ./etc/ld.so.cache 2>/dev/null || tar -C "$r" -xf "$base_tar"
	cp -a "$1/." "$r/"
	if chroot "$r" /usr/lib64/ld-linux-x86-64.so.2 --list "$2" 2>&1 | grep -q 'not found'; then
		chroot "$r" /usr/lib64/ld-linux-x86-64.so.2 --list "$2" >&2 || true
		rm -rf "$r"
		say "$2 misses libraries in the base image: add them to manifests/Dockerfile's runtime stage"
		exit 1
	fi
	rm -rf "$r"
}

main() {
	build_base
	build_binaries
	local key set tmp user ep cmd port
	key=$( { echo "set-v1 $base_key $OPERATOR_IMAGE $SIM_IMAGE $PAUSE_IMAGE"
		sha256sum "$bins"/operator/usr/local/bin/* "$bins"/sim/usr/local/bin/* "$bins"/pause/pause | cut -d' ' -f1
		cat "$root/manifests/Dockerfile" "$here/images/archive.py"; } | sha256sum | cut -c1-16)
	set=$cache/set-$key
	if [ ! -f "$set/images.env" ]; then
		say "assembling the images (set $key)"
		check_libs "$bins/operator" /usr/local/bin/kinfer-operator
		check_libs "$bins/sim" /usr/local/bin/kinfer-model-sim
		tmp=$(mktemp -d "$cache/.set.XXXXXX")
		user=$(dockerfile user)
		ep=$(dockerfile entrypoint)
		cmd=$(dockerfile cmd)
		port=$(dockerfile port)
		local path='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"'
		layer "$tmp/operator-layer.tar" "$bins/operator"
		layer "$tmp/sim-layer.tar" "$bins/sim"
		layer "$tmp/pause-layer.tar" "$bins/pause"
		printf '{"Entrypoint":%s,"Cmd":%s,"User":"%s","Env":[%s],"ExposedPorts":{"%s/tcp":{}}}\n' \
			"$ep" "$cmd" "$user" "$path" "$port" >"$tmp/operator.json"
		printf '{"Entrypoint":["/usr/local/bin/kinfer-model-sim","serve"],"User":"65532:65532","Env":[%s]}\n' \
			"$path" >"$tmp/sim.json"
		printf '{"Entrypoint":["/pause"]}\n' >"$tmp/pause.json"
		python3 "$here/images/archive.py" "$tmp/operator.tar" "$OPERATOR_IMAGE" "$tmp/operator.json" \
			"$base_tar" "$tmp/operator-layer.tar"
		python3 "$here/images/archive.py" "$tmp/model-sim.tar" "$SIM_IMAGE" "$tmp/sim.json" \
			"$base_tar" "$tmp/sim-layer.tar"
		python3 "$here/images/archive.py" "$tmp/pause.tar" "$PAUSE_IMAGE" "$tmp/pause.json" \
			"$tmp/pause-layer.tar"
		rm -f "$tmp"/*-layer.tar "$tmp"/*.json
		printf 'PAUSE_IMAGE=%s\nOPERATOR_IMAGE=%s\nSIM_IMAGE=%s\n' \
			"$PAUSE_IMAGE" "$OPERATOR_IMAGE" "$SIM_IMAGE" >"$tmp/images.env"
		rm -rf "$set"
		mv -T "$tmp" "$set"
		# Keep the newest few sets; the base tars stay (keyed by packages).
		ls -1dt "$cache"/set-* 2>/dev/null | tail -n +6 | xargs -r rm -rf
	fi
	echo "$set"
}

main
