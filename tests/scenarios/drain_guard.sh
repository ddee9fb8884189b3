#!/usr/bin/env bash
# Scenario (issue 12, items 4 and 11): the drain's writes failing, and a
# drain cancelled after the pod-deletion-cost was set.
#  - item 4: while the API server refuses the drain's mark on the pods (a
#    ValidatingAdmissionPolicy in this namespace), a scale-down 3 -> 1
#    never lowers the Deployment (the old code lowered it anyway and the
#    ReplicaSet removed pods that were never drained); once the policy
#    goes, the drain runs and the Deployment shrinks.
#  - item 11: a pod left Draining with kinfer's lowest pod-deletion-cost
#    (its scale-down cancelled after the cost was set) goes back in
#    service without that cost, so the next scale-down's ReplicaSet does
#    not remove it ahead of the pods kinfer drained.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin drainguard
policy=kinfer-test-refuse-drain-$$

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 20ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
warm() { [ "$(j kis/svc '{.status.warmReplicas}')" = "$1" ]; }

apply_isvc svc <<YAML
  replicas: 3
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1}
  drain: {timeoutSeconds: 20}
YAML
if wait_until 60 warm 3; then pass "3 pods warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi

# Item 4: the API server refuses the drain's mark.
deny_policy "$policy" '{apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["pods"]}' \
	"!has(object.metadata.annotations) || !('kinfer.io/draining-since' in object.metadata.annotations)" \
	"test: the drain's mark is refused"
p=$(live_pods svc | head -1)
refused() { ! kc -n "$ns" annotate pod "$p" kinfer.io/draining-since=1 >/dev/null 2>&1; }
if wait_until 20 refused; then pass "the API server refuses the drain's mark"; else fail "the policy does not refuse"; fi
kc -n "$ns" scale kis/svc --replicas=1 >/dev/null
failing() { grep -q 'drain of .* failed' "$tmp/op.log"; }
if wait_until 20 failing; then pass "the drain's write fails (logged, retried)"; else fail "no failed drain in the log"; fi
sleep 6
expect_match "$(j deploy/svc '{.spec.replicas}')" '^3$' "the Deployment keeps 3 replicas while the drain cannot mark its pods"
expect_match "$(live_pods svc | wc -l)" '^3$' "no pod removed undrained"
deny_policy_remove "$policy"
shrunk() { [ "$(j deploy/svc '{.spec.replicas}')" = 1 ]; }
if wait_until 40 shrunk; then pass "once the writes go through, the drain runs and the Deployment goes to 1"; else fail "Deployment at $(j deploy/svc '{.spec.replicas}')"; fi

# Item 11: back to 2; one pod left as a cancelled drain leaves it.
kc -n "$ns" scale kis/svc --replicas=2 >/dev/null
if wait_until 60 warm 2; then pass "2 pods warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
pod_live() { [ "$(live_pods svc | wc -l)" = 2 ]; }
wait_until 30 pod_live || true
p=$(live_pods svc | head -1)
kc -n "$ns" annotate pod "$p" --overwrite kinfer.io/draining-since="$(date +%s)" \
	controller.kubernetes.io/pod-deletion-cost=-2147483648 >/dev/null
kc -n "$ns" patch pod "$p" --subresource=status --type=strategic \
	-p '{"status":{"conditions":[{"type":"kinfer.io/warmed-up","status":"False","reason":"Draining","message":"test"}]}}' >/dev/null
back() { [ "$(reason_of "$p")" = DrainCancelled ]; }
if wait_until 20 back; then pass "the pod goes back in service (DrainCancelled)"; else fail "reason: $(reason_of "$p")"; fi
nocost() { [ -z "$(j "pod/$p" '{.metadata.annotations.controller\.kubernetes\.io/pod-deletion-cost}')" ]; }
if wait_until 10 nocost; then pass "its pod-deletion-cost is removed"; else fail "pod-deletion-cost still $(j "pod/$p" '{.metadata.annotations.controller\.kubernetes\.io/pod-deletion-cost}')"; fi
expect_match "$(j "pod/$p" '{.metadata.annotations.kinfer\.io/draining-since}')" '^$' "and so is kinfer.io/draining-since"
summary
