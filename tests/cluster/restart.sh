#!/usr/bin/env bash
# Stop one component of a running local control plane (by its recorded PID)
# and start it again with the same command line, for tests that need an API
# server to go away and come back.
#
#   tests/cluster/restart.sh DIR NAME [--kill] [--down-for SECONDS] [--before-start CMD]
#
# NAME is a file in DIR/pids (kube-apiserver, etcd, ...). --down-for keeps it
# stopped that long; --kill stops it with SIGKILL (a crash); --before-start runs CMD (a shell command) while it is
# down, e.g. to change etcd behind the API server's back.
set -euo pipefail
dir=$1 name=$2
shift 2
down_for=0 before= sig=TERM
while [ $# -gt 0 ]; do
	case $1 in
	--down-for) down_for=$2; shift 2 ;;
	--before-start) before=$2; shift 2 ;;
	--kill) sig=KILL; shift ;;
	*) echo "restart.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
say() { printf 'kinfer-cluster: %s\n' "$*" >&2; }
pidf=$dir/pids/$name.pid cmdf=$dir/cmd/$name
[ -f "$pidf" ] && [ -f "$cmdf" ] || { say "no $name in $dir"; exit 1; }
pid=$(cat "$pidf")
exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
if [ -n "$exe" ] && grep -q -- "$(basename "$exe")" "$cmdf"; then
	say "stopping $name (pid $pid)"
	kill -"$sig" "$pid"
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
fi
sleep "$down_for"
if [ -n "$before" ]; then
	bash -c "$before"
fi
say "starting $name again"
# shellcheck disable=SC2046
eval "set -- $(cat "$cmdf")"
"$@" </dev/null >>"$dir/logs/$name.log" 2>&1 &
echo $! >"$pidf"
if [ "$name" = kube-apiserver ]; then
	set -a; . "$dir/env"; set +a
	for _ in $(seq 1 150); do
		[ "$("$BIN/kubectl" --request-timeout=2s get --raw /readyz 2>/dev/null)" = ok ] && exit 0
		kill -0 "$(cat "$pidf")" 2>/dev/null || { say "$name exited"; tail -20 "$dir/logs/$name.log" >&2; exit 1; }
		sleep 0.2
	done
	say "$name not ready after 30 s"
	exit 1
fi
