#!/usr/bin/env bash
# bench_placement.sh: on a fresh local control plane, the time kube-scheduler
# and kinfer each take to place the same N pods (default 1000, one GPU each)
# on the same KWOK GPU nodes, and the ratio. Prints "name value unit" lines;
# asserts nothing.
#
#   tests/bench/bench_placement.sh [N] [OPERATOR_BINARY]
#
# Each scheduler is stopped while its N pods are created, then started; the
# time runs from its start (so it includes its own LIST and cache sync) to
# the moment kubectl sees every pod with a nodeName. kube-scheduler is the
# harness's (v1.33.13, default profile); both get the same client budget:
# BENCH_QPS requests/s, burst twice that (default 50/100, kube-scheduler's
# own defaults; its config's clientConnection is set to it). At that budget
# both are bound by the binding POSTs; a higher BENCH_QPS shows more of the
# decisions themselves. Also each one's mean decision time alone (filter and
# score, from its own metrics: kube-scheduler's
# scheduler_scheduling_algorithm_duration_seconds, kinfer's
# kinfer_placement_decision_duration_seconds). The
# pods of the first run are deleted before the second, so both see the same
# empty nodes: BENCH_NODES nodes of 8 nvidia.com/gpu (default ceil(N/8)+10;
# the README's figures are at 1,000 and 5,000).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-1000}
op=${2:-$root/build-bench/kinfer-operator}
qps=${BENCH_QPS:-50}
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 20000 ]] || { echo "N: 1..20000" >&2; exit 2; }
[ -x "$op" ] || { cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
	cmake --build "$root/build-bench" -j2 --target kinfer-operator >/dev/null; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/kinfer-bench-pl.XXXXXX")
op_pid=
cleanup() {
	if [ -n "$op_pid" ]; then kill -TERM "$op_pid" 2>/dev/null || true; wait "$op_pid" 2>/dev/null || true; fi
	bash "$root/tests/cluster/down.sh" "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
bash "$root/tests/cluster/up.sh" "$dir" 2>/dev/null
set -a; . "$dir/env"; set +a
k() { "$BIN/kubectl" --request-timeout=30s "$@"; }
now() { date +%s.%N; }

nodes=${BENCH_NODES:-$(( (n + 7) / 8 + 10 ))}
[[ "$nodes" =~ ^[0-9]+$ && "$nodes" -ge $(( (n + 7) / 8 )) && "$nodes" -le 20000 ]] ||
	{ echo "BENCH_NODES: room for N pods (ceil(N/8)) .. 20000" >&2; exit 2; }
{
	echo "apiVersion: v1"; echo "kind: List"; echo "items:"
	for i in $(seq 0 $((nodes - 1))); do
		cat <<YAML
- apiVersion: v1
  kind: Node
  metadata:
    name: bench-gpu-$i
    annotations: {kwok.x-k8s.io/node: fake}
    labels: {type: kwok, bench: placement, nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, nvidia.com/gpu.memory: "81920"}
  status:
    capacity: {cpu: "64", memory: 1Ti, pods: "110", nvidia.com/gpu: "8"}
    allocatable: {cpu: "64", memory: 1Ti, pods: "110", nvidia.com/gpu: "8"}
YAML
	done
} > "$dir/nodes.yaml"
k apply -f "$dir/nodes.yaml" >/dev/null
for _ in $(seq 1 600); do
	[ "$(k get nodes -l bench=placement --no-headers | grep -cw Ready)" -ge "$nodes" ] && break
	sleep 1
done
k apply --server-side -f "$root/crds/inferenceservice.yaml" >/dev/null
k wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=60s >/dev/null

# pods NS SCHEDULER: N pods of one GPU each, as kinfer's workload writes them.
pods() {
	echo "apiVersion: v1"; echo "kind: List"; echo "items:"
	for i in $(seq 1 "$n"); do
		cat <<YAML
- apiVersion: v1
  kind: Pod
  metadata: {name: p$i, namespace: $1, labels: {kinfer.io/service: bench, kinfer.io/priority: normal}}
  spec:
    schedulerName: $2
    nodeSelector: {bench: placement}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    containers:
    - name: m
      image: vllm/vllm-openai:v0.6.3
      resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {nvidia.com/gpu: "1"}}
YAML
	done
}
bound() { k -n "$1" get pods -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -c . || true; }
wait_bound() {
	local i
	for i in $(seq 1 2400); do
		[ "$(bound "$1")" -ge "$n" ] && return 0
		sleep 0.25
	done
	echo "bench_placement: only $(bound "$1") of $n pods bound in $1" >&2
	return 1
}
overcommitted() {
	k -n "$1" get pods -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' |
		sort | uniq -c | awk '$1 > 8 { c++ } END { print c + 0 }'
}

# kube-scheduler: stopped while the pods are created, then started again.
k create ns bench-ks >/dev/null
sed -i "s|^clientConnection: {kubeconfig: \"\(.*\)\"}|clientConnection: {kubeconfig: \"\1\", qps: $qps, burst: $((qps * 2))}|" "$dir/scheduler.yaml"
grep -q "qps: $qps" "$dir/scheduler.yaml" || { echo "bench_placement: cannot set kube-scheduler's QPS" >&2; exit 1; }
pods bench-ks default-scheduler > "$dir/ks.yaml"
bash "$root/tests/cluster/restart.sh" "$dir" kube-scheduler \
	--before-start "'$BIN/kubectl' --kubeconfig '$KUBECONFIG' create -f '$dir/ks.yaml' >/dev/null && date +%s.%N > '$dir/t0'" 2>/dev/null
wait_bound bench-ks
t1=$(now)
ks_s=$(awk -v a="$(cat "$dir/t0")" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
# The decision alone (filter + score, no binding): kube-scheduler's
# scheduling_algorithm_duration, kinfer's placement_decision_duration.
# (-k: kube-scheduler serves a self-signed certificate of its own cert dir;
# loopback only, our own process.)
ks_metrics=$(curl -sk --max-time 5 --cert "$dir/pki/admin.crt" \
	--key "$dir/pki/admin.key" "https://127.0.0.1:$KINFER_SCHEDULER_PORT/metrics" || true)
ks_alg=$(printf '%s\n' "$ks_metrics" | awk '/^scheduler_scheduling_algorithm_duration_seconds_sum/ { s = $2 }
	/^scheduler_scheduling_algorithm_duration_seconds_count/ { c = $2 } END { if (c > 0) printf "%.1f", s / c * 1e6; else print "nan" }')
ks_over=$(overcommitted bench-ks)
k delete ns bench-ks --wait=true --timeout=300s >/dev/null

# kinfer: the pods first, then the operator.
k create ns bench-kinfer >/dev/null
pods bench-kinfer kinfer | k create -f - >/dev/null
t0=$(now)
"$op" run --kubeconfig "$KUBECONFIG" --http-addr 127.0.0.1:0 --leader-elect=false \
	--watch-namespace bench-kinfer --resync-period 0 \
	--kube-api-qps "$qps" --kube-api-burst "$((qps * 2))" 2>"$dir/op.log" &
op_pid=$!
wait_bound bench-kinfer
t1=$(now)
ki_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
ki_over=$(overcommitted bench-kinfer)
op_port=$(sed -n 's/.*msg="serving health and metrics".* port=\([0-9]*\).*/\1/p' "$dir/op.log" | head -1)
ki_alg=$(curl -s --max-time 5 "http://127.0.0.1:$op_port/metrics" | awk '/^kinfer_placement_decision_duration_seconds_sum/ { s = $2 }
	/^kinfer_placement_decision_duration_seconds_count/ { c = $2 } END { if (c > 0) printf "%.1f", s / c * 1e6; else print "nan" }')

printf 'placement_e2e_client_qps %d 1/s\n' "$qps"
printf 'placement_e2e_pods %d count\n' "$n"
printf 'placement_e2e_nodes %d count\n' "$nodes"
printf 'placement_e2e_kube_scheduler_seconds %s s\n' "$ks_s"
printf 'placement_e2e_kinfer_seconds %s s\n' "$ki_s"
awk -v a="$ks_s" -v b="$ki_s" -v n="$n" 'BEGIN {
	printf "placement_e2e_kube_scheduler_pods_per_second %.0f 1/s\n", n / a
	printf "placement_e2e_kinfer_pods_per_second %.0f 1/s\n", n / b
	printf "placement_e2e_kube_scheduler_over_kinfer_time_ratio %.2f ratio\n", a / b
}'
printf 'placement_e2e_kube_scheduler_mean_decision_us %s us\n' "$ks_alg"
printf 'placement_e2e_kinfer_mean_decision_us %s us\n' "$ki_alg"
printf 'placement_e2e_overcommitted_nodes_kube_scheduler %d count\n' "$ks_over"
printf 'placement_e2e_overcommitted_nodes_kinfer %d count\n' "$ki_over"
