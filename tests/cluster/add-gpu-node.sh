#!/usr/bin/env bash
# Add one fake GPU node to the cluster that up.sh started in DIR, and wait
# until it is Ready and the not-ready taint is lifted.
#
#   tests/cluster/add-gpu-node.sh DIR NAME PRODUCT COUNT MEMORY_MIB
#   e.g. add-gpu-node.sh "$dir" kwok-l4-0 NVIDIA-L4 4 23034
#
# The node looks like those of nodes.yaml: 32 CPUs, 256Gi, 110 pods, COUNT
# nvidia.com/gpu, and the GPU feature discovery labels. Extra labels can be
# added afterwards with kubectl label.
set -euo pipefail

[ $# -eq 5 ] || { echo "usage: $0 DIR NAME PRODUCT COUNT MEMORY_MIB" >&2; exit 2; }
dir=$1 name=$2 product=$3 count=$4 memory=$5
[[ "$count" =~ ^[0-9]+$ && "$memory" =~ ^[0-9]+$ ]] || { echo "COUNT and MEMORY_MIB must be numbers" >&2; exit 2; }
[ -f "$dir/env" ] || { echo "$dir/env not found: run up.sh $dir first" >&2; exit 1; }
# shellcheck source=/dev/null
. "$dir/env"

k() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG" --request-timeout=10s "$@"; }

node_yaml() {
	cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations: {kwok.x-k8s.io/node: fake}
  labels:
    type: kwok
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: "$product"
    nvidia.com/gpu.count: "$count"
    nvidia.com/gpu.memory: "$memory"
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "$count"}
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "$count"}
YAML
}

node_yaml | k apply -f - >/dev/null
k wait --for=condition=Ready "node/$name" --timeout=30s >/dev/null
# And until the node lifecycle controller has lifted the not-ready taint it
# puts on a node it has not yet seen Ready (no pod is placed there before).
for _ in $(seq 1 150); do
	k get node "$name" -o jsonpath='{.spec.taints[*].key}' | grep -q 'node.kubernetes.io/not-ready' || break
	sleep 0.2
done
echo "kinfer-cluster: node $name ($count x $product, $memory MiB) is Ready" >&2
