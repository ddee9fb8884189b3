#!/usr/bin/env bash
# Scenario: kinfer places its own pods (schedulerName kinfer), as a user
# sees it with kubectl. 26 KWOK GPU nodes of this scenario's own (A100,
# H100, L4, A30, MIG A100s, time-sliced T4s; one A100 caches llama-70b),
# tainted kinfer.io/test=ID:NoSchedule and labelled kinfer.io/test=ID, so
# only this scenario's pods (which tolerate the taint and select the label)
# land there and its pods land nowhere else. Asserted from the pods'
# nodeName: the cached node is chosen; MIG and time-sliced pods go only to
# nodes advertising their resource; concurrent scale-ups of four services
# never over-commit a node's GPUs (exclusive never shares); when GPUs are
# short and a node is added, the high-priority service gets it first; a pod
# that fits nowhere stays Pending with a FailedScheduling Event counting the
# reasons and PodScheduled=False/Unschedulable. The nodes are deleted on exit.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin pl
id=$ns
track_ns "$ns-off"
at_exit 'grep -A80 PLACEMENT-CHECK "$tmp/op.log" >> /work/k/pcheck.log 2>/dev/null'
at_exit 'kc delete nodes -l "kinfer.io/test=$id" --wait=false >/dev/null 2>&1'

# node NAME PRODUCT MEMORY_MIB ALLOCATABLE_EXTRA [LABEL_EXTRA]
node() {
	cat <<YAML
- apiVersion: v1
  kind: Node
  metadata:
    name: $id-$1
    annotations: {kwok.x-k8s.io/node: fake}
    labels: {type: kwok, kinfer.io/test: "$id", nvidia.com/gpu.product: "$2", nvidia.com/gpu.memory: "$3"${5:-}}
  spec:
    taints: [{key: kinfer.io/test, value: "$id", effect: NoSchedule}]
  status:
    capacity: {cpu: "64", memory: 1Ti, pods: "110"$4}
    allocatable: {cpu: "64", memory: 1Ti, pods: "110"$4}
YAML
}
{
	echo "apiVersion: v1"; echo "kind: List"; echo "items:"
	for i in 0 1 2 3 4 5; do
		extra=""
		[ "$i" = 3 ] && extra=", kinfer.io/cached.llama-70b: \"true\""
		node "a100-$i" NVIDIA-A100-SXM4-80GB 81920 ", nvidia.com/gpu: \"8\"" "$extra"
	done
	for i in 0 1 2 3 4 5; do node "h100-$i" NVIDIA-H100-80GB-HBM3 81920 ", nvidia.com/gpu: \"8\""; done
	for i in 0 1 2 3 4 5; do node "l4-$i" NVIDIA-L4 23034 ", nvidia.com/gpu: \"4\""; done
	for i in 0 1; do node "a30-$i" NVIDIA-A30 24576 ", nvidia.com/gpu: \"2\""; done
	for i in 0 1 2 3 4 5; do
		case $i in
		[0-3]) node "mig-$i" NVIDIA-A100-SXM4-80GB 81920 ", nvidia.com/mig-1g.10gb: \"7\", nvidia.com/mig-3g.40gb: \"2\"" ", nvidia.com/mig.strategy: mixed" ;;
		*) node "ts-$i" Tesla-T4 15360 ", nvidia.com/gpu.shared: \"16\"" ", nvidia.com/gpu.replicas: \"4\"" ;;
		esac
	done
} > "$tmp/nodes.yaml"
mynodes=26

install_crd
kc create ns "$ns" >/dev/null
if wait_until 30 kc apply -f "$tmp/nodes.yaml" >/dev/null 2>&1; then pass "$mynodes GPU nodes of this scenario created"; else fail "nodes"; fi
# Ready, and without the not-ready taint: kube-controller-manager's node
# lifecycle controller taints a node it has not yet seen Ready and lifts
# the taint on a later pass (seconds under load), and neither kinfer nor
# kube-scheduler places a pod there meanwhile (a full run once saw
# llama-70b go to an L4 because the A100 caching it still had the taint).
ready_nodes() {
	[ "$(kc get nodes -l "kinfer.io/test=$id" --no-headers \
		-o custom-columns='R:.status.conditions[?(@.type=="Ready")].status,T:.spec.taints[*].key' 2>/dev/null |
		awk '$1 == "True" && $2 !~ /node\.kubernetes\.io\/(not-ready|unreachable)/' | wc -l)" -ge "$mynodes" ]
}
if wait_until 60 ready_nodes; then pass "the nodes are Ready, without the not-ready taint"; else fail "nodes not Ready: $(kc get nodes -l "kinfer.io/test=$id" --no-headers -o custom-columns='N:.metadata.name,R:.status.conditions[?(@.type=="Ready")].status,T:.spec.taints[*].key' | head -30)"; fi

start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" --resync-period 0 \
	--kube-api-qps 200 --kube-api-burst 400 ${KINFER_PLACEMENT_EXTRA:-} || exit 1
port=$started_port

# isvc NAME MODEL REPLICAS GPU_YAML PRIORITY
isvc() {
	cat <<YAML
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: $1, namespace: $ns}
spec:
  model: {name: $2, uri: s3://models/$2}
  replicas: $3
  resources: {gpu: $4, cpu: "1", memory: 4Gi}
  scheduling:
    priority: $5
    nodeSelector: {kinfer.io/test: "$id"}
    tolerations: [{key: kinfer.io/test, operator: Equal, value: "$id", effect: NoSchedule}]
YAML
}
# Other scenarios restart the shared API server now and then: writes are
# retried (bounded) until they land.
# apply_isvc NAME MODEL REPLICAS GPU_YAML PRIORITY
apply_isvc() { isvc "$@" > "$tmp/$1.yaml"; wait_until 30 kc apply -f "$tmp/$1.yaml" >/dev/null 2>&1; }
# scale NAME REPLICAS
scale() { wait_until 30 kc -n "$ns" scale "kis/$1" --replicas="$2" >/dev/null 2>&1; }
# node_of_pods SERVICE: the nodes of its pods, one per line ("-" if none).
nodes_of() { kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.spec.nodeName}{"-"}{"\n"}{end}'; }
bound() { [ "$(nodes_of "$1" | grep -vc '^-$')" -ge "$2" ]; }

# --- the cached node is chosen ----------------------------------------------
apply_isvc llama llama-70b 1 '{count: 2}' normal
if wait_until 60 bound llama 1; then pass "llama placed"; else fail "llama not placed: $(kc -n "$ns" get pods -o wide)"; fi
if ! expect_match "$(nodes_of llama)" "^$id-a100-3-$" "llama-70b lands on the A100 that caches it ($(nodes_of llama))"; then
	# Why: the operator's log says score, cache, fit and index or scan;
	# the nodes their readiness and taints at this moment.
	grep '"pod bound"' "$tmp/op.log" | grep "llama"
	kc get nodes -l "kinfer.io/test=$id" -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,TAINTS:.spec.taints[*].key,CACHED:.metadata.labels.kinfer\.io/cached\.llama-70b' --no-headers
fi
expect_match "$(grep '"pod bound"' "$tmp/op.log" | grep llama)" "node=$id-a100-3 score=[0-9]+ cached=true fit=[0-9]+ nodes=[0-9]+ by=(index|scan)" \
	"the operator's log says the node and that the model is cached there"
expect_match "$(kc -n "$ns" get pods -l kinfer.io/service=llama -o jsonpath='{.items[0].spec.schedulerName}')" '^kinfer$' "its pod names kinfer as its scheduler"

# --- MIG and time-slicing: only nodes advertising the resource ----------------
apply_isvc mig small-mig 6 '{count: 1, sharing: mig, migProfile: 3g.40gb}' normal
apply_isvc ts small-ts 20 '{count: 1, sharing: time-slicing}' low
if wait_until 60 bound mig 6; then pass "6 MIG 3g.40gb pods placed"; else fail "mig: $(nodes_of mig | tr '\n' ' ')"; fi
if wait_until 60 bound ts 20; then pass "20 time-sliced pods placed"; else fail "ts: $(nodes_of ts | tr '\n' ' ')"; fi
expect_match "$(nodes_of mig | sort -u | tr '\n' ' ')" "^($id-mig-[0-3]- )+$" "MIG pods only on MIG nodes"
expect_match "$(nodes_of ts | sort -u | tr '\n' ' ')" "^($id-ts-[45]- )+$" "time-sliced pods only on nodes advertising nvidia.com/gpu.shared"
# Low priority packs: 20 shares fill one T4 node (16) before the other.
expect_match "$(nodes_of ts | sort | uniq -c | awk '{print $1}' | sort -n | tr '\n' ' ')" '^4 16 $' "low priority packs: 16 shares on one node, 4 on the other"

# --- concurrent scale-ups never over-commit ----------------------------------
for s in a b c d; do apply_isvc "s$s" "model-$s" 0 '{count: 1}' normal; done
apply_isvc s2 model-2 0 '{count: 2}' normal
sleep 2
scalers=()
for s in sa sb sc sd; do scale "$s" 30 & scalers+=($!); done
scale s2 20 & scalers+=($!)
wait "${scalers[@]}"   # not the operator's PID
# 6 A100 (48, 2 taken by llama) + 6 H100 (48) + 6 L4 (24) + 2 A30 (4) = 124 GPUs
# for 120 + 40 asked: every GPU ends up used, some pods wait.
used_gpus() {
	kc -n "$ns" get pods -o json | jq '[.items[] | select(.spec.nodeName != null) |
		.spec.containers[].resources.limits["nvidia.com/gpu"] // "0" | tonumber] | add // 0'
}
all_used() { [ "$(used_gpus)" -ge 124 ]; }
if wait_until 120 all_used; then pass "every exclusive GPU of the scenario's nodes taken"; else fail "only $(used_gpus) GPUs in use"; fi
sleep 2
# Every pod's requests on every node of ours, by resource.
kc -n "$ns" get pods -o json | jq -r '.items[] | select(.spec.nodeName != null) | .spec.nodeName as $n |
	.spec.containers[].resources.limits // {} | to_entries[] | select(.key | startswith("nvidia.com/")) |
	"\($n) \(.key) \(.value)"' > "$tmp/used.txt"
kc get nodes -l "kinfer.io/test=$id" -o json | jq -r '.items[] | .metadata.name as $n |
	.status.allocatable | to_entries[] | select(.key | startswith("nvidia.com/")) | "\($n) \(.key) \(.value)"' > "$tmp/alloc.txt"
over=$(awk 'NR == FNR { a[$1" "$2] = $3; next } { u[$1" "$2] += $3 }
	END { for (k in u) if (u[k] > a[k] + 0) print k, u[k] "/" a[k] + 0 }' "$tmp/alloc.txt" "$tmp/used.txt")
total=$(awk '$2 == "nvidia.com/gpu" { s += $3 } END { print s + 0 }' "$tmp/used.txt")
expect_match "${over:-none}" '^none$' "no node has more GPUs (exclusive, MIG or shared) requested than it has"
expect_match "$total" '^124$' "all 124 exclusive GPUs in use after the scale-ups ($total)"
waiting=$(kc -n "$ns" get pods --field-selector=spec.nodeName= -o name | wc -l)
expect_match "$waiting" '^([1-9][0-9]*)$' "the pods that do not fit wait ($waiting Pending)"

# --- priority: GPUs short, a node added -> the high-priority service first ----
apply_isvc hi model-hi 0 '{count: 8}' high
apply_isvc lo model-lo 0 '{count: 8}' low
sleep 1
scale lo 2
sleep 2
scale hi 1
hi_waits() { [ "$(kc -n "$ns" get pods -l kinfer.io/service=hi -o jsonpath='{.items[0].status.conditions[?(@.type=="PodScheduled")].reason}')" = Unschedulable ]; }
if wait_until 30 hi_waits; then pass "no room: the high-priority pod waits too"; else fail "hi: $(kc -n "$ns" get pods -l kinfer.io/service=hi -o wide)"; fi
{ echo "apiVersion: v1"; echo "kind: List"; echo "items:"; node "h100-new" NVIDIA-H100-80GB-HBM3 81920 ", nvidia.com/gpu: \"8\""; } > "$tmp/new.yaml"
wait_until 30 kc apply -f "$tmp/new.yaml" >/dev/null 2>&1
if wait_until 30 bound hi 1; then pass "a node with 8 GPUs is added: the high-priority pod is placed"; else fail "hi not placed: $(kc -n "$ns" get pods -l kinfer.io/service=hi -o wide)"; fi
expect_match "$(nodes_of hi)" "^$id-h100-new-$" "on the new node"
expect_match "$(nodes_of lo | grep -c "^$id-h100-new-")" '^0$' "the low-priority pods, waiting longer, did not get it"

# --- a pod that fits nowhere ---------------------------------------------------
apply_isvc nofit model-x 1 '{count: 16}' normal
nofit_pod() { kc -n "$ns" get pods -l kinfer.io/service=nofit -o jsonpath='{.items[0].metadata.name}'; }
nofit_event() { kc -n "$ns" get events --field-selector "involvedObject.name=$(nofit_pod),reason=FailedScheduling" -o jsonpath='{.items[0].message}' 2>/dev/null; }
has_event() { [ -n "$(nofit_event)" ]; }
if wait_until 30 has_event; then pass "FailedScheduling Event on the pod"; else fail "no FailedScheduling event: $(kc -n "$ns" get events | tail -5)"; fi
msg=$(nofit_event)
expect_match "$msg" "^0/[0-9]+ nodes are available: " "the message counts nodes like kube-scheduler: $msg"
expect_match "$msg" "[^0-9]$((mynodes + 1)) Insufficient nvidia.com/gpu" "each of this scenario's $((mynodes + 1)) nodes: Insufficient nvidia.com/gpu"
expect_match "$msg" "node\\(s\\) didn't match Pod's node affinity/selector|had untolerated taint" "the other nodes: selector or taint"
pod=$(nofit_pod)
expect_match "$(kc -n "$ns" get pod "$pod" -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].status}/{.status.conditions[?(@.type=="PodScheduled")].reason}')" '^False/Unschedulable$' "PodScheduled=False, reason Unschedulable"
expect_match "node=[$(kc -n "$ns" get pod "$pod" -o jsonpath='{.spec.nodeName}')] $(kc -n "$ns" get pod "$pod" -o jsonpath='{.status.phase}')" '^node=\[\] Pending$' "and it stays Pending without a node"
degraded() { [ "$(kc -n "$ns" get kis nofit -o jsonpath='{.status.conditions[?(@.type=="Degraded")].reason}')" = Unschedulable ]; }
if wait_until 30 degraded; then pass "the InferenceService is Degraded: Unschedulable"; else fail "nofit status: $(kc -n "$ns" get kis nofit -o jsonpath='{.status.conditions}')"; fi

pm() { curl -s --max-time 2 "http://127.0.0.1:$port/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { print $2 }'; }
bound_total=$(pm 'kinfer_placement_decisions_total{result="bound"}')
on_nodes=$(kc -n "$ns" get pods -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -c .)
expect_match "$(awk -v b="${bound_total:-0}" -v n="$on_nodes" 'BEGIN { print (n > 100 && b >= n) ? "yes" : "no" }')" '^yes$' "/metrics counts the pods bound ($bound_total; $on_nodes pods have a node)"
expect_match "$(pm 'kinfer_placement_decisions_total{result="unschedulable"}')" '^[1-9]' "and the decisions that found no node"
expect_match "$(pm kinfer_placement_decision_duration_seconds_count)" '^[1-9]' "and times each decision"
expect_match "$(grep -c 'level=error' "$tmp/op.log")" '^0$' "no errors in the operator log"

# --- --placement=false: kube-scheduler places the pods -----------------------
wait_until 30 kc create ns "$ns-off" >/dev/null 2>&1
start_operator "$tmp/op-off.log" --leader-elect=false --watch-namespace "$ns-off" --placement=false || exit 1
cat > "$tmp/off.yaml" <<YAML
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: svc-off, namespace: $ns-off}
spec:
  model: {name: small, uri: s3://models/small}
  resources: {gpu: {count: 1}}
YAML
wait_until 30 kc apply -f "$tmp/off.yaml" >/dev/null 2>&1
off_bound() { [ -n "$(kc -n "$ns-off" get pods -l kinfer.io/service=svc-off -o jsonpath='{.items[0].spec.nodeName}' 2>/dev/null)" ]; }
if wait_until 60 off_bound; then pass "--placement=false: the pod is placed"; else fail "off: $(kc -n "$ns-off" get kis,deploy,pods -o wide; tail -5 "$tmp/op-off.log")"; fi
expect_match "$(kc -n "$ns-off" get pods -l kinfer.io/service=svc-off -o jsonpath='{.items[0].spec.schedulerName}')" '^default-scheduler$' "by kube-scheduler (schedulerName default-scheduler)"
summary
