#!/usr/bin/env bash
# ctest fixture: bring the local control plane up before the integration
# tests and down after them. A stale folder from a killed run is stopped
# (by the PIDs it recorded) and removed first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/../cluster
action=$1 dir=$2
shift 2   # up: the rest goes to up.sh (--real-node)
case $action in
up)
	if [ -d "$dir" ]; then
		bash "$cluster/down.sh" "$dir" || true
		rm -rf "$dir"
	fi
	bash "$cluster/up.sh" "$@" "$dir"
	;;
down)
	if [ -d "$dir" ]; then
		bash "$cluster/down.sh" "$dir"
		rm -rf "$dir"
	fi
	;;
*)
	echo "usage: fixture.sh up|down DIR [--real-node]" >&2
	exit 2
	;;
esac
