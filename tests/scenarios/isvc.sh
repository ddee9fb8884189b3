#!/usr/bin/env bash
# Scenario: an InferenceService through its life, as a user sees it with
# kubectl, against the real control plane and the real kinfer-operator.
# apply -> owned Deployment (GPU resources, readiness gate, labels) and
# Service -> pods Running on fitting GPU nodes -> Ready; a steady state makes
# no API writes; spec change -> rollout and observedGeneration; kubectl scale;
# a change made behind kinfer's back is reverted; Degraded with the reason
# when pods cannot be scheduled or created; delete -> children collected.
# Until the warm-up controller exists, this test plays its part and sets the
# pods' kinfer.io/warmed-up condition itself (set_gate).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin isvc

install_crd
kc create ns "$ns" >/dev/null
# Scoped to this namespace, so scenarios running at once never share objects.
start_operator "$tmp/op.log" --leader-elect=false --resync-period 5s --watch-namespace "$ns" || exit 1
port=$started_port

pods_of() { kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
set_gate() {
	kc -n "$ns" patch pod "$1" --subresource=status --type=strategic \
		-p "{\"status\":{\"conditions\":[{\"type\":\"kinfer.io/warmed-up\",\"status\":\"$2\",\"reason\":\"Test\"}]}}" >/dev/null
}
warm_all() { local p; for p in $(pods_of "$1"); do set_gate "$p" True; done; }
running() { [ "$(kc -n "$ns" get pods -l "kinfer.io/service=$1" --field-selector=status.phase=Running -o name | wc -l)" -ge "$2" ]; }
is_cond() { [ "$(cond "$1" "$2" status)" = "$3" ]; }
writes() {
	curl -s "http://127.0.0.1:$port/metrics" |
		awk '/^kinfer_api_requests_total\{verb="(apply|patch|create|update|delete)"/ { s += $2 } END { print s + 0 }'
}

apply_isvc llm <<YAML
  model: {name: llama-13b, uri: s3://models/llama-13b, framework: vllm}
  replicas: 2
  resources:
    gpu: {count: 2, memory: 40Gi}
    cpu: "8"
    memory: 64Gi
  drain: {timeoutSeconds: 60}
YAML
if wait_until 20 j deploy/llm '{.metadata.name}' >/dev/null; then pass "Deployment created"; else fail "no Deployment"; fi
expect_match "$(j deploy/llm '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}')" '^InferenceService/llm/true$' "Deployment is owned (controller) by the InferenceService"
expect_match "$(j deploy/llm '{.spec.template.spec.containers[0].resources.limits.nvidia\.com/gpu}')" '^2$' "2 exclusive GPUs requested"
expect_match "$(j deploy/llm '{.spec.template.spec.readinessGates[0].conditionType}')" '^kinfer.io/warmed-up$' "pods carry the warm-up readiness gate"
expect_match "$(j deploy/llm '{.metadata.labels.kinfer\.io/service}')" '^llm$' "Deployment labelled kinfer.io/service"
expect_match "$(j deploy/llm '{.spec.template.spec.terminationGracePeriodSeconds}')" '^90$' "grace period above the drain timeout"
expect_match "$(j deploy/llm '{.metadata.managedFields[*].manager}')" 'kinfer-operator' "written by field manager kinfer-operator"
expect_match "$(j svc/llm '{.spec.selector.kinfer\.io/service} {.metadata.ownerReferences[0].kind}')" '^llm InferenceService$' "Service selects the pods and is owned"

if wait_until 30 running llm 2; then pass "2 pods Running"; else fail "pods not Running: $(kc -n "$ns" get pods -o wide)"; fi
nodes=$(kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{range .items[*]}{.spec.nodeName} {end}')
expect_match "$nodes" '^(kwok-(a100|h100)-[0-9]+ ?)+$' "pods on nodes whose GPUs have 40Gi (not the T4): $nodes"
# Status changes are coalesced (written up to 2 s after they are seen).
not_ready() { [[ "$(cond llm Ready reason)" == *ReplicasNotReady* ]]; }
if wait_until 10 not_ready; then pass "Ready=False while no pod is warm"; else fail "Ready while no pod is warm: $(cond llm Ready reason)"; fi
warm_all llm
if kc -n "$ns" wait --for=condition=Ready kis/llm --timeout=30s >/dev/null; then pass "kubectl wait --for=condition=Ready"; else fail "not Ready: $(j kis/llm '{.status}')"; fi
expect_match "$(cond llm Ready reason)" '^AllReplicasReady$' "Ready reason AllReplicasReady"
expect_match "$(kc -n "$ns" get kis llm --no-headers)" '^llm +llama-13b +2 +2 +2 +2 +True' "kubectl get kis shows replicas, ready, warm, desired, Ready"
expect_match "$(kc -n "$ns" get events --field-selector involvedObject.name=llm,involvedObject.kind=InferenceService -o jsonpath='{.items[*].reason}')" 'DeploymentCreated.*Ready|Ready.*DeploymentCreated' "Events tell what happened"

# A steady state costs no API writes, across two resyncs.
sleep 2
w0=$(writes); sleep 11; w1=$(writes)
if [ "$w0" = "$w1" ]; then pass "steady state: no API writes in 11 s with a 5 s resync ($w0 total)"; else fail "writes in steady state: $w0 -> $w1"; fi

# A spec change rolls out; observedGeneration follows.
kc -n "$ns" patch kis llm --type=merge -p '{"spec":{"model":{"revision":"v2"}}}' >/dev/null
rolled() { warm_all llm; [ "$(j kis/llm '{.status.observedGeneration}')" = 2 ] &&
	[ "$(cond llm Ready reason)" = AllReplicasReady ] &&
	[ "$(j deploy/llm '{.status.updatedReplicas}')" = 2 ] && [ "$(j deploy/llm '{.status.replicas}')" = 2 ]; }
if wait_until 60 rolled; then pass "new generation rolled out, observedGeneration 2"; else fail "rollout: $(j kis/llm '{.status}')"; fi
expect_match "$(j deploy/llm '{.spec.template.metadata.annotations.kinfer\.io/model-revision}')" '^v2$' "Deployment template carries the new revision"

# kubectl scale through the scale subresource.
kc -n "$ns" scale kis/llm --replicas=3 >/dev/null
scaled() { [ "$(j deploy/llm '{.spec.replicas}')" = 3 ] && [ "$(j kis/llm '{.status.desiredReplicas}')" = 3 ]; }
if wait_until 20 scaled; then pass "kubectl scale kis --replicas=3 reaches the Deployment"; else fail "scale: deploy $(j deploy/llm '{.spec.replicas}')"; fi

# A change behind kinfer's back is reverted.
kc -n "$ns" patch deploy llm --type=json -p '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"evil/image:1"}]' >/dev/null
reverted() { [ "$(j deploy/llm '{.spec.template.spec.containers[0].image}')" = "vllm/vllm-openai:v0.6.3" ]; }
if wait_until 20 reverted; then pass "an edited Deployment is put back"; else fail "image stays $(j deploy/llm '{.spec.template.spec.containers[0].image}')"; fi

# No node fits: Degraded with the scheduler's words.
apply_isvc nofit <<YAML
  model: {name: big, uri: s3://models/big}
  resources: {gpu: {count: 1, product: NVIDIA-B200}}
YAML
if wait_until 30 is_cond nofit Degraded True; then pass "unschedulable pods: Degraded=True"; else fail "nofit: $(j kis/nofit '{.status}')"; fi
expect_match "$(cond nofit Degraded reason): $(cond nofit Degraded message)" '^Unschedulable: .*nodes are available' "reason Unschedulable with the scheduler's message"
expect_match "$(cond nofit Ready status)" '^False$' "and Ready=False"

# Delete: the children go with it.
kc -n "$ns" delete kis llm --wait=true --timeout=30s >/dev/null
gone() { ! kc -n "$ns" get deploy/llm >/dev/null 2>&1 && ! kc -n "$ns" get svc/llm >/dev/null 2>&1; }
if wait_until 30 gone; then pass "delete: Deployment and Service are collected"; else fail "children remain"; fi
# Pods cannot be created (quota): Degraded, ReplicaFailure. Last, since the
# quota blocks every new pod of the namespace.
kc -n "$ns" create quota no-pods --hard=pods=0 >/dev/null
sed "s/name: nofit/name: quota/; s/NVIDIA-B200/NVIDIA-A100-SXM4-80GB/" "$tmp/nofit.yaml" | kc apply -f - >/dev/null
quota_degraded() { [ "$(cond quota Degraded reason)" = ReplicaFailure ]; }
if wait_until 45 quota_degraded; then pass "quota exceeded: Degraded ReplicaFailure"; else fail "quota: $(j kis/quota '{.status}')"; fi
expect_match "$(cond quota Degraded message)" 'exceeded quota' "the message carries the quota error"
expect_match "$(grep -c 'level=error' "$tmp/op.log")" '^0$' "no errors in the operator log"
summary
