#!/usr/bin/env bash
# The main job on the embedded default: a real local control plane with
# fake GPU nodes (KWOK) and one real node, kinfer-node-0 (kubelet,
# containerd, kube-proxy), all built from Go modules and Debian packages on
# first use, then cached. kinfer is installed from its image the way an
# admin installs it (kubectl apply -k manifests/) and runs in containers on
# the real node, where the model server (the simulator's image) runs too:
# kubectl logs, exec and port-forward work. Ctrl-C stops everything.
#
# Usage: tests/demo.sh [--for SECONDS] [--kwok-only]
#   --for        stop by itself after SECONDS (for scripts)
#   --kwok-only  no real node: kinfer-operator and the simulator run on this
#                machine against KWOK pods on loopback (quicker, no containers)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf 'kinfer-demo: %s\n' "$*" >&2; }
run_for=0 real_node=1
while [ $# -gt 0 ]; do
	case "$1" in
	--for) run_for=${2:?--for needs seconds}; shift 2 ;;
	--kwok-only) real_node=0; shift ;;
	*) echo "usage: tests/demo.sh [--for SECONDS] [--kwok-only]" >&2; exit 2 ;;
	esac
done
t_start=$SECONDS

say "checking dependencies"
eval "$(bash tests/deps.sh)"
say "building the local control plane (first time: about 7 minutes)"
bash tests/cluster/build.sh >/dev/null
if [ "$real_node" = 1 ]; then
	say "building the images: operator, model-server simulator, pause (first time: about 2 minutes)"
	bash tests/cluster/images.sh >/dev/null
	exec bash tests/demo-node.sh "$run_for" "$t_start"
fi
say "building kinfer-operator and the model-server simulator"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target kinfer-operator kinfer-model-sim >/dev/null

dir=$(mktemp -d "${TMPDIR:-/tmp}/kinfer-demo.XXXXXX")
op_pid= sim_pid=
cleanup() {
	trap - EXIT INT TERM
	say "stopping"
	for p in $op_pid $sim_pid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	bash tests/cluster/down.sh "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash tests/cluster/up.sh "$dir"
set -a; . "$dir/env"; set +a
say "installing the InferenceService CRD"
"$BIN/kubectl" apply --server-side -f crds/inferenceservice.yaml >/dev/null
"$BIN/kubectl" wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=60s >/dev/null
say "starting the model-server simulator (answers on the pods' loopback IPs; log: $dir/sim.log)"
build/tests/sim/kinfer-model-sim --kubeconfig "$KUBECONFIG" --load-seconds 3s > "$dir/sim.log" 2>&1 &
sim_pid=$!
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
say "applying manifests/samples/vllm.yaml and waiting for Ready (model load, then warm-up)"
"$BIN/kubectl" apply -f manifests/samples/vllm.yaml
if ! "$BIN/kubectl" wait --for=condition=Ready kis --all --timeout=120s; then
	say "not Ready in 120 s; status follows"
	"$BIN/kubectl" get kis -o yaml | sed -n '/^  status:/,$p'
	exit 1
fi
"$BIN/kubectl" get kis,deploy,svc,pods -o wide
cat <<MSG

kinfer is running against a local control plane. In another shell:

  export KUBECONFIG=$KUBECONFIG PATH=$BIN:\$PATH
  kubectl get kis                      # replicas, ready, warm, desired, Ready
  kubectl describe kis                 # conditions and events
  kubectl patch kis llama-7b --type=merge -p '{"spec":{"scaling":{"minReplicas":3}}}'
                                       # new pods join the Service only once warm
  kubectl get pods -w
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
