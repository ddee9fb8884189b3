#!/usr/bin/env bash
# kinfer installed the way an admin installs it (`kubectl apply -k
# manifests/`, self-signed webhook mode) on the real node: two operator pods
# in containers on kinfer-node-0, on their ServiceAccount's token; kubectl
# logs, exec and port-forward reach them; the API server calls the webhook
# through the kinfer-operator Service, which refuses a bad manifest and
# defaults a good one, and answers a Deployment's scale, first with the
# certificate kinfer keeps in its
# Secret, then read from the Secret mounted in the pod (the fsGroup defect
# fails that). And the network rule: a pod cannot reach an outside address.
. "$(dirname "$0")/node_lib.sh"
begin node-install

install_kinfer; expect_code 0 $? "kubectl apply -k manifests/: the operator Deployment rolls out"
out=$(kc -n kinfer-system get pods -l app.kubernetes.io/name=kinfer-operator \
	-o jsonpath='{range .items[*]}{.spec.nodeName} {.status.phase} {.status.containerStatuses[0].ready}{"\n"}{end}')
expect_match "$(grep -c '^kinfer-node-0 Running true$' <<<"$out")" '^2$' "two operator pods run and are ready on kinfer-node-0 ($out)"
out=$(kc -n kinfer-system get pods -l app.kubernetes.io/name=kinfer-operator -o jsonpath='{.items[*].status.podIP}')
expect_match "$out" '^198\.18\.[0-9]+\.[0-9]+ 198\.18\.[0-9]+\.[0-9]+$' "the operator pods have pod IPs of 198.18.0.0/16 ($out)"
holder=$(lease)
expect_match "$holder" '^kinfer-operator-' "one operator pod holds the leader Lease ($holder)"
leader=${holder%_*}

# kubectl logs, exec, port-forward: through the API server to the kubelet.
out=$(kc -n kinfer-system logs "$leader" 2>&1)
expect_match "$out" '"became the leader"' "kubectl logs shows the leader's log"
expect_match "$out" '"serving the admission webhook".*"cert":"kinfer-system/kinfer-webhook-tls"' "self-signed mode: the webhook serves kinfer's certificate from its Secret"
out=$(kc -n kinfer-system exec "$leader" -- /usr/local/bin/kinfer-operator version 2>&1)
expect_code 0 $? "kubectl exec runs a command in the operator's container ($out)"
out=$(kc -n kinfer-system exec "$leader" -- sh -c 'id -u; head -c 27 /etc/kinfer/webhook/tls.key' 2>&1)
expect_match "$out" '^65532' "the operator runs as uid 65532"
expect_match "$out" 'BEGIN (EC |RSA )?PRIVATE KEY' "uid 65532 reads the mounted key (fsGroup 65532)"
pf_port=$((20000 + RANDOM % 10000))
kc_bg -n kinfer-system port-forward "pod/$leader" "$pf_port:8080" >/dev/null 2>&1 &
pf_pid=$!; track_pid "$pf_pid"
wait_until 20 curl -sf --max-time 2 "http://127.0.0.1:$pf_port/readyz" -o /dev/null
expect_code 0 $? "kubectl port-forward reaches the operator's /readyz"
out=$(curl -s --max-time 3 "http://127.0.0.1:$pf_port/metrics")
expect_match "$out" '^kinfer_' "... and its /metrics"
stop_pid "$pf_pid"

kc create namespace "$ns" >/dev/null
# webhook_checks MODE: refusal and defaulting through the Service.
webhook_checks() {
	local out
	out=$(kc -n "$ns" apply -f "$refused_dir/gpu-memory-over-product.yaml" 2>&1)
	expect_match "$out" 'denied the request.*spec.resources.gpu.memory: 90Gi exceeds the 80Gi of NVIDIA-H100-80GB-HBM3' \
		"$1: the webhook refuses a bad manifest, naming the field"
	out=$(kc -n "$ns" apply --dry-run=server -o jsonpath='{.spec.image} {.spec.drain.timeoutSeconds} {.spec.warmup.path}' \
		-f "$src/tests/data/webhook/good/vllm-minimal.yaml" 2>&1)
	expect_match "$out" '^vllm/vllm-openai:v0.6.3 120 /v1/completions$' "$1: the webhook defaults a good manifest ($out)"
	# The scale webhook: a Deployment's scale reaches it through the
	# Service (its caBundle set too); not kinfer's, so allowed. Its pod
	# asks for a node there is none of: nothing runs.
	local d="plain-${2:-0}"
	kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $d}
spec:
  replicas: 0
  selector: {matchLabels: {app: $d}}
  template:
    metadata: {labels: {app: $d}}
    spec:
      nodeSelector: {kinfer.test/none: "none"}
      containers: [{name: c, image: registry.k8s.io/pause:3.10}]
YAML
	out=$(kc -n "$ns" scale deployment "$d" --replicas=1 2>&1)
	expect_code 0 $? "$1: a Deployment not kinfer's scales ($out)"
	scale_seen() { kc -n kinfer-system logs -l app.kubernetes.io/name=kinfer-operator --tail=-1 2>/dev/null |
		grep '"webhook":"scale"' | grep -q "\"object\":\"$ns/$d\".*\"decision\":\"allowed\""; }
	wait_until 20 scale_seen
	expect_code 0 $? "$1: ... asked of the scale webhook through the Service, which allowed it"
}
webhook_checks "self-signed" 1

# File mode: the same Secret, now read from the mount (as with cert-manager).
kc -n kinfer-system set env deploy/kinfer-operator KINFER_WEBHOOK_SELF_SIGNED- >/dev/null
kc -n kinfer-system rollout status deploy/kinfer-operator --timeout=120s >/dev/null
expect_code 0 $? "the operator rolls out reading its certificate from the mounted Secret"
# Only the new pods serve from here on: the old ones are gone.
op_pods_settled() {
	pods_total kinfer-system app.kubernetes.io/name=kinfer-operator 2 &&
		pods_ready kinfer-system app.kubernetes.io/name=kinfer-operator 2
}
wait_until 90 op_pods_settled; expect_code 0 $? "the old operator pods are gone"
pod=$(kc -n kinfer-system get pods -l app.kubernetes.io/name=kinfer-operator -o jsonpath='{.items[0].metadata.name}')
out=$(kc -n kinfer-system logs "$pod" 2>&1)
expect_match "$out" '"serving the admission webhook".*"cert":"/etc/kinfer/webhook/tls.crt"' "the webhook serves the mounted certificate"
wait_until 30 kc -n "$ns" apply --dry-run=server -f "$src/tests/data/webhook/good/vllm-minimal.yaml" -o name >/dev/null 2>&1
webhook_checks "mounted Secret" 2
install_kinfer; expect_code 0 $? "kubectl apply -k manifests/ again: back to self-signed mode"
wait_until 90 op_pods_settled
pod=$(kc -n kinfer-system get pods -l app.kubernetes.io/name=kinfer-operator -o jsonpath='{.items[0].metadata.name}')

# A node drain (the Eviction API, as kubectl drain and the cluster
# autoscaler use it) keeps one operator and one activator: the first
# eviction of each goes through, the second, at once, is refused by its
# PodDisruptionBudget.
evict() { # POD: "evicted", or the API server's refusal
	printf '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"%s","namespace":"kinfer-system"}}' "$1" |
		kc create --raw "/api/v1/namespaces/kinfer-system/pods/$1/eviction" -f - 2>&1 >/dev/null && echo evicted
}
for app in kinfer-operator kinfer-activator; do
	allows_one() {
		pods_ready kinfer-system "app.kubernetes.io/name=$app" 2 &&
			[ "$(kc -n kinfer-system get pdb "$app" -o jsonpath='{.status.disruptionsAllowed}' 2>/dev/null)" = 1 ]
	}
	wait_until 90 allows_one
	expect_code 0 $? "PodDisruptionBudget $app: 2 pods ready, one disruption allowed"
	read -r -a pods <<<"$(kc -n kinfer-system get pods -l "app.kubernetes.io/name=$app" -o jsonpath='{.items[*].metadata.name}')"
	out=$(evict "${pods[0]}"; echo "|"; evict "${pods[1]}")
	expect_match "$(tr -d '\n' <<<"$out")" "^evicted\|.*Cannot evict pod as it would violate the pod's disruption budget" \
		"$app: the first eviction goes through, the second is refused ($(tr -d '\n' <<<"$out" | cut -c1-140))"
done
wait_until 90 op_pods_settled
pod=$(kc -n kinfer-system get pods -l app.kubernetes.io/name=kinfer-operator -o jsonpath='{.items[0].metadata.name}')

# Nothing leaves the machine: from a pod, an outside address is unreachable
# at once, and the host's drop rules saw nothing either.
before=$(nft list table inet "kinfer_n${KINFER_NODE_NETNS#kinfer-n}" | grep -o 'packets [0-9]*' | tr '\n' ' ')
t0=$SECONDS
out=$(kc -n kinfer-system exec "$pod" -- bash -c 'timeout 5 bash -c "exec 3<>/dev/tcp/203.0.113.7/80" 2>&1; echo rc=$?' 2>&1)
expect_match "$out" 'Network is unreachable' "a pod's connection to 203.0.113.7 fails: network unreachable ($out)"
expect_match "$((SECONDS - t0))" '^[0-3]$' "... at once ($((SECONDS - t0)) s)"
after=$(nft list table inet "kinfer_n${KINFER_NODE_NETNS#kinfer-n}" | grep -o 'packets [0-9]*' | tr '\n' ' ')
expect_match "$after" "^${before}\$" "... and no packet reached the host's way out (drop counters: $after)"
out=$(in_node ip route show default)
expect_match "${out:-none}" '^none$' "the node's netns has no default route"
out=$(kc -n kinfer-system exec "$pod" -- bash -c 'exec 3<>/dev/tcp/$KUBERNETES_SERVICE_HOST/$KUBERNETES_SERVICE_PORT && echo reached' 2>&1)
expect_match "$out" '^reached$' "a pod reaches the API server through the kubernetes Service"

summary
