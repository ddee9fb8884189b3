#!/usr/bin/env bash
# Stop the local control plane that up.sh started in DIR.
#
#   tests/cluster/down.sh DIR
#
# Stops each process named by DIR/pids/*.pid, the last started first:
# (with a real node: its pods first, and afterwards every namespace, link,
# route, nftables table, mount and cgroup DIR/node/net.env names, node-down.sh)
# SIGTERM, up to 10 s to exit, then SIGKILL. A PID is signalled only while it
# still is the process up.sh started (same program, DIR in its command line),
# so a PID recycled by an unrelated process is left alone. Idempotent; logs
# stay (the caller removes DIR).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ -d "$1/pids" ] || [ -f "$1/node/net.env" ] || exit 0
dir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)

say() { printf 'kinfer-cluster: %s\n' "$*" >&2; }

# ours NAME PID: PID runs binary NAME with DIR in its arguments.
ours() {
	local exe args
	exe=$(readlink "/proc/$2/exe" 2>/dev/null) || return 1
	[ "${exe##*/}" = "$1" ] || return 1
	args=$(tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null) || return 1
	case "$args" in *"$dir/"*) return 0 ;; esac
	return 1
}

# stop NAME: SIGTERM, wait (bounded), SIGKILL; forget the PID file.
stop() {
	local f=$dir/pids/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$1" "$pid"; then
		say "stopping $1 (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			ours "$1" "$pid" || break
			sleep 0.2
		done
		if ours "$1" "$pid"; then
			say "$1 (pid $pid) did not exit in 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$f"
}

# The start order, reversed; then any PID file the order does not name.
names() {
	[ -f "$dir/pids/order" ] && tac "$dir/pids/order"
	local f
	for f in "$dir"/pids/*.pid; do
		[ -f "$f" ] && basename "$f" .pid
	done
	return 0
}

# The real node: its pods go first (the kubelet would restart them, and
# containerd must still be up to stop them), then everything node.sh recorded.
node=$dir/node
if [ -f "$node/net.env" ]; then
	stop kube-proxy
	stop kubelet
	. "$here/node-down.sh"
	node_stop_pods
fi
for name in $(names); do
	stop "$name"
done
rm -f "$dir/pids/order"
[ -f "$node/net.env" ] && node_down
exit 0
