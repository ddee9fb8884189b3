#!/usr/bin/env bash
# The demo on the real node (tests/demo.sh runs this after the builds):
#   demo-node.sh RUN_FOR T_START
# A cluster with kinfer-node-0, kinfer installed from its image with
# `kubectl apply -k manifests/`, and one InferenceService of the simulator
# image on the real node. Everything stops on exit (Ctrl-C included).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
run_for=${1:-0} t_start=${2:-$SECONDS}
say() { printf 'kinfer-demo: %s\n' "$*" >&2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/kinfer-demo.XXXXXX")
cleanup() {
	trap - EXIT INT TERM
	say "stopping"
	bash tests/cluster/down.sh "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash tests/cluster/up.sh --real-node "$dir"
set -a; . "$dir/env"; set +a
k() { "$BIN/kubectl" "$@"; }
say "installing kinfer as an admin does: kubectl apply -k manifests/"
k apply -k manifests/ >/dev/null
k -n kinfer-system rollout status deploy/kinfer-operator --timeout=180s >&2
k get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count
k -n kinfer-system get pods -o wide

say "applying an InferenceService of the model-server simulator's image on kinfer-node-0"
k create namespace serving >/dev/null
# The webhook is reached through its Service: kube-proxy has the ready
# pods' endpoints a moment after the rollout, and until then the API server
# refuses the create ("failed calling webhook ... connection refused").
# Wait for a server-side dry run (writes nothing) to pass, 60 s at most.
for _ in $(seq 1 60); do
	k -n serving apply --dry-run=server -f manifests/samples/vllm.yaml >/dev/null 2>&1 && break
	sleep 1
done
k -n serving apply -f - <<'YAML'
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: llama-7b}
spec:
  model: {name: llama-7b, uri: "hf://meta-llama/Llama-2-7b-chat-hf", framework: vllm}
  image: kinfer/model-sim:0.1.0        # speaks vLLM's HTTP and metrics
  env: [{name: SIM_LOAD_SECONDS, value: "3"}]
  port: 8000
  replicas: 1
  resources:
    gpu: {count: 1, memory: 16Gi}
    cpu: 100m
    memory: 64Mi
  warmup: {path: /v1/completions, body: {model: llama-7b, prompt: Hello, max_tokens: 16}, requests: 3, timeoutSeconds: 120}
  drain: {timeoutSeconds: 20}
  scheduling: {priority: high, nodeSelector: {kinfer.io/real-node: "true"}}
YAML
if ! k -n serving wait --for=condition=Ready kis/llama-7b --timeout=180s; then
	say "not Ready in 180 s; status follows"
	k -n serving get kis -o yaml | sed -n '/^  status:/,$p'
	exit 1
fi
k -n serving get kis,deploy,svc,endpointslices,pods -o wide
ip=$(k -n serving get svc llama-7b -o jsonpath='{.spec.clusterIP}')
say "set-up took $((SECONDS - t_start)) s"
cat <<MSG

kinfer runs in containers on kinfer-node-0 (a real kubelet, containerd and
kube-proxy in the network namespace $KINFER_NODE_NETNS); the KWOK GPU nodes
stay for placement. In another shell:

  export KUBECONFIG=$KUBECONFIG PATH=$BIN:\$PATH
  kubectl -n serving get kis                          # replicas, ready, warm, desired
  kubectl -n serving scale kis/llama-7b --replicas=3  # new pods join the Service only once warm
  kubectl -n serving get pods -o wide -w
  kubectl -n serving logs -f deploy/llama-7b          # the model server's log
  kubectl -n kinfer-system logs -f deploy/kinfer-operator
  kubectl -n kinfer-system exec deploy/kinfer-operator -- kinfer-operator version
  kubectl -n kinfer-system port-forward deploy/kinfer-operator 8080:8080 &
  curl -s http://127.0.0.1:8080/metrics | grep ^kinfer_
  # steady load on the Service's ClusterIP, through kube-proxy, from the node:
  nsenter --net=/var/run/netns/$KINFER_NODE_NETNS \\
    $root/build-images/tests/sim/kinfer-loadgen --service $ip:8000 --rps 20 --duration 30s

Press Ctrl-C to stop everything.
MSG
if [ "$run_for" -gt 0 ]; then
	sleep "$run_for"
else
	while sleep 3600; do :; done
fi
