#!/usr/bin/env bash
# The main job on the embedded default: a real local control plane with
# fake GPU nodes (built from Go modules on first use, then cached), and
# kinfer-operator running against it. Ctrl-C stops everything it started.
#
# Usage: tests/demo.sh [--for SECONDS]   (--for: stop by itself, for scripts)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'kinfer-demo: %s\n' "$*" >&2; }
run_for=0
case "${1:-}" in
--for) run_for=${2:?--for needs seconds} ;;
"") ;;
*) echo "usage: tests/demo.sh [--for SECONDS]" >&2; exit 2 ;;
esac

say "checking dependencies"
eval "$(bash tests/deps.sh)"
say "building the local control plane (first time: about 6 minutes)"
bash tests/cluster/build.sh >/dev/null
say "building kinfer-operator"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target kinfer-operator >/dev/null

dir=$(mktemp -d "${TMPDIR:-/tmp}/kinfer-demo.XXXXXX")
op_pid=
cleanup() {
	trap - EXIT INT TERM
	say "stopping"
	if [ -n "$op_pid" ] && kill -0 "$op_pid" 2>/dev/null; then
		kill -TERM "$op_pid" 2>/dev/null || true
		wait "$op_pid" 2>/dev/null || true
	fi
	bash tests/cluster/down.sh "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash tests/cluster/up.sh "$dir"
set -a; . "$dir/env"; set +a
say "starting kinfer-operator (log: $dir/operator.log)"
build/kinfer-operator run --kubeconfig "$KUBECONFIG" --http-addr 127.0.0.1:0 \
	> "$dir/operator.log" 2>&1 &
op_pid=$!
for _ in $(seq 1 100); do
	grep -q 'became the leader' "$dir/operator.log" && break
	kill -0 "$op_pid" 2>/dev/null || break
	sleep 0.2
done
cat "$dir/operator.log"
kill -0 "$op_pid" 2>/dev/null || { say "kinfer-operator exited"; exit 1; }

port=$(sed -n 's/.*msg="serving health and metrics".* port=\([0-9]*\).*/\1/p' "$dir/operator.log" | head -1)
"$BIN/kubectl" get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count
cat <<MSG

kinfer is running against a local control plane. In another shell:

  export KUBECONFIG=$KUBECONFIG PATH=$BIN:\$PATH
  kubectl get nodes -o wide
  kubectl describe node $("$BIN/kubectl" get nodes -o jsonpath='{.items[0].metadata.name}')
  tail -f $dir/operator.log
  curl -s http://127.0.0.1:$port/readyz
  curl -s http://127.0.0.1:$port/metrics | grep ^kinfer_
  kubectl -n default get lease kinfer-operator -o yaml

Press Ctrl-C to stop everything.
MSG
if [ "$run_for" -gt 0 ]; then
	sleep "$run_for"
else
	wait "$op_pid"
fi
