#!/usr/bin/env bash
# Scenario: a HorizontalPodAutoscaler left on an InferenceService's own
# Deployment (a migration from the HPA, or KEDA, whose ScaledObject makes
# one: the user's Deployment deleted, kinfer's made under the same name,
# the autoscaler still pointing at that name). Both wrote the Deployment's
# replicas: the HPA (here 1, every 5 s: the fixture's sync period) and
# kinfer (2) in turn, each turn a pod removed undrained or a cold one made
# for nothing. Now kinfer leaves the replicas to it (a pod its own
# scale-down was draining goes back in service): the Deployment stays
# at the HPA's 1, no pod is made for 25 s, the InferenceService says why
# (Degraded ConflictingAutoscaler naming the autoscaler and the way out)
# and a Warning Event too. Pointed elsewhere (the old target is looked at
# again), kinfer takes its 2 back. And the way out: an HPA that scales the
# InferenceService (its scale subresource) is no conflict, and its
# scale-down goes through kinfer's drain, until spec.scaling is turned on
# (then it is one, and said so).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin hpaconflict

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-requests 1 --cold-ms 100ms --latency-ms 20ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
apply_isvc llm <<YAML
  replicas: 2
  warmup: {path: /v1/completions, requests: 1}
  drain: {timeoutSeconds: 30}
YAML
warm() { [ "$(j kis/llm '{.status.warmReplicas}')" = "$1" ]; }
if wait_until 60 warm 2; then pass "2 warm replicas"; else fail "not warm: $(j kis/llm '{.status}')"; fi

hpa() { # NAME KIND API TARGET MIN MAX
	kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: $1}
spec:
  scaleTargetRef: {apiVersion: $3, kind: $2, name: $4}
  minReplicas: $5
  maxReplicas: $6
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
YAML
}
reason_is() { [ "$(cond llm Degraded reason)" = "$1" ]; }
replicas_are() { [ "$(j deploy/llm '{.spec.replicas}')" = "$1" ]; }
pod_uids() { kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}' | sort; }

# Two changes at once: kinfer's own scale-down to 1 is draining a pod when
# the autoscaler (2 to 2) appears. The replicas are the autoscaler's now:
# the pod goes back in service, none is removed.
kc -n "$ns" scale kis/llm --replicas=1 >/dev/null
warm_reasons() { kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}{"\n"}{end}' | sort | tr '\n' ' '; }
draining() { grep -qw Draining <<<"$(warm_reasons)"; }
if wait_until 20 draining; then pass "kinfer's scale-down to 1 drains a pod"; else fail "pods: $(warm_reasons)"; fi
hpa llm Deployment apps/v1 llm 2 2
if wait_until 20 reason_is ConflictingAutoscaler; then pass "the HPA appears: Degraded reason ConflictingAutoscaler"; else fail "Degraded: $(cond llm Degraded reason): $(cond llm Degraded message)"; fi
back() { ! draining && [ "$(j kis/llm '{.status.warmReplicas}')" = 2 ]; }
if wait_until 20 back; then pass "the draining pod is back in service: 2 warm ($(warm_reasons))"; else fail "pods: $(warm_reasons)"; fi
expect_match "$(j deploy/llm '{.spec.replicas}')/$(pod_uids | wc -l)" '^2/2$' "the Deployment keeps 2 replicas, 2 pods"
if grep -qw Drained <<<"$(kc -n "$ns" get events --field-selector involvedObject.name=llm -o jsonpath='{.items[*].reason}')"; then fail "a Drained Event"; else pass "no pod drained out (no Drained Event)"; fi

kc -n "$ns" patch hpa llm --type=merge -p '{"spec":{"minReplicas":1,"maxReplicas":1}}' >/dev/null
kc -n "$ns" scale kis/llm --replicas=2 >/dev/null # kinfer's own count again
bounds_1() { reason_is ConflictingAutoscaler && [[ "$(cond llm Degraded message)" == *"(1 to 1 replicas)"* ]]; }
if wait_until 30 bounds_1; then pass "Degraded reason ConflictingAutoscaler"; else fail "Degraded: $(cond llm Degraded reason): $(cond llm Degraded message)"; fi
msg=$(cond llm Degraded message)
expect_match "$msg" '^HorizontalPodAutoscaler llm \(1 to 1 replicas\) also scales Deployment llm: kinfer leaves the replicas to it' "the message names the autoscaler and what kinfer does"
expect_match "$msg" 'make it scale InferenceService llm instead' "and the way out"
expect_match "$(cond llm Degraded status)" '^True$' "Degraded True"
if wait_until 30 replicas_are 1; then pass "the Deployment at the HPA's 1"; else fail "replicas $(j deploy/llm '{.spec.replicas}')"; fi
pods_are() { [ "$(pod_uids | wc -l)" = "$1" ]; }
if wait_until 30 pods_are 1; then pass "1 pod left"; else fail "pods: $(pod_uids | wc -l)"; fi
before=$(pod_uids)
# 25 s: five of the HPA's syncs. The code before: the replicas went 1, 2,
# 1, ... and a pod was made at each turn.
flips=0
for _ in $(seq 1 25); do
	r=$(j deploy/llm '{.spec.replicas}')
	[ "$r" = 1 ] || flips=$((flips + 1))
	sleep 1
done
expect_match "$flips" '^0$' "the Deployment stays at 1 replica for 25 s (polls at another count: $flips)"
after=$(pod_uids)
if [ "$before" = "$after" ]; then pass "no pod made or removed meanwhile"; else fail "pods before: $(echo $before) after: $(echo $after)"; fi
expect_match "$(j kis/llm '{.status.desiredReplicas}')/$(cond llm Ready status)" '^1/True$' "status: 1 replica asked of the Deployment, Ready"
warnings() { kc -n "$ns" get events --field-selector "involvedObject.name=llm,type=Warning" -o jsonpath='{.items[*].reason}'; }
if grep -qw ConflictingAutoscaler <<<"$(warnings)"; then pass "a Warning Event ConflictingAutoscaler"; else fail "events: $(warnings)"; fi
conflict_msgs() { kc -n "$ns" get events --field-selector "involvedObject.name=llm,reason=ConflictingAutoscaler" -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | sed '/^$/d'; }
three() { [ "$(conflict_msgs | wc -l)" -ge 3 ]; }
wait_until 15 three
msgs=$(conflict_msgs)
n=$(wc -l <<<"$msgs"); u=$(sort -u <<<"$msgs" | wc -l)
# A new Event when the bounds (2 to 2, then 1 to 1) or what the service
# asks for (1, then 2) changed: 3 messages, each written once.
if [ "$n" = 3 ] && [ "$u" = 3 ]; then pass "3 such Events, one per message (not one per reconcile)"; else fail "$n Events, $u messages: $msgs"; fi

# Pointed at another Deployment: llm's old target is looked at again.
kc -n "$ns" patch hpa llm --type=merge -p '{"spec":{"scaleTargetRef":{"name":"someone-else"}}}' >/dev/null
if wait_until 20 reason_is AsExpected; then pass "pointed elsewhere: Degraded AsExpected"; else fail "Degraded: $(cond llm Degraded reason)"; fi
if wait_until 20 replicas_are 2; then pass "kinfer takes its 2 replicas back"; else fail "replicas $(j deploy/llm '{.spec.replicas}')"; fi
if wait_until 60 warm 2; then pass "2 warm again"; else fail "warm: $(j kis/llm '{.status.warmReplicas}')"; fi
kc -n "$ns" delete hpa llm >/dev/null

# The way out: an HPA that scales the InferenceService. Its 3 become the
# spec's replicas; its 1 later is drained by kinfer.
hpa llm-isvc InferenceService kinfer.io/v1alpha1 llm 3 3
spec_is() { [ "$(j kis/llm '{.spec.replicas}')" = "$1" ]; }
if wait_until 30 spec_is 3 && wait_until 20 replicas_are 3; then pass "an HPA on the InferenceService: spec.replicas and the Deployment at 3"; else fail "spec $(j kis/llm '{.spec.replicas}') deploy $(j deploy/llm '{.spec.replicas}')"; fi
expect_match "$(cond llm Degraded reason)" '^AsExpected$' "no conflict: Degraded AsExpected"
if wait_until 60 warm 3; then pass "3 warm"; else fail "warm: $(j kis/llm '{.status.warmReplicas}')"; fi
hpa llm-isvc InferenceService kinfer.io/v1alpha1 llm 1 1
if wait_until 30 spec_is 1 && wait_until 60 replicas_are 1; then pass "its scale-down to 1: the Deployment at 1"; else fail "spec $(j kis/llm '{.spec.replicas}') deploy $(j deploy/llm '{.spec.replicas}')"; fi
reasons=$(kc -n "$ns" get events --field-selector involvedObject.name=llm -o jsonpath='{.items[*].reason}')
if grep -qw Draining <<<"$reasons" && grep -qw Drained <<<"$reasons"; then pass "drained first (Events Draining, Drained)"; else fail "events: $reasons"; fi

# spec.scaling turned on while that HPA is still there: the autoscaler
# decides now, and the spec.replicas the HPA writes is ignored (the
# webhook scale.kinfer.io would refuse its writes; this cluster runs none,
# as one where it is down). Before, nothing said so. Now Degraded names
# it, the replicas are spec.scaling's; deleted, all is as expected.
kc -n "$ns" patch kis/llm --type=merge -p '{"spec":{"scaling":{"minReplicas":2,"maxReplicas":2,"metrics":[{"type":"QueueDepth","target":4}]}}}' >/dev/null
isvc_conflict() { reason_is ConflictingAutoscaler && [[ "$(cond llm Degraded message)" == *"scales this InferenceService, but spec.scaling"* ]]; }
if wait_until 30 isvc_conflict; then pass "spec.scaling on with an HPA on the InferenceService: Degraded ConflictingAutoscaler"; else fail "Degraded: $(cond llm Degraded reason): $(cond llm Degraded message)"; fi
expect_match "$(cond llm Degraded message)" '^HorizontalPodAutoscaler llm-isvc \(1 to 1 replicas\) scales this InferenceService, but spec.scaling decides its replicas: the spec.replicas it writes is ignored. Delete it, or remove spec.scaling' \
	"the message names the HPA and the way out"
if wait_until 60 replicas_are 2; then pass "the replicas are spec.scaling's 2, not the HPA's 1"; else fail "replicas $(j deploy/llm '{.spec.replicas}')"; fi
msgs=$(kc -n "$ns" get events --field-selector involvedObject.name=llm,reason=ConflictingAutoscaler -o jsonpath='{range .items[*]}{.message}{"\n"}{end}')
expect_match "$msgs" 'HorizontalPodAutoscaler llm-isvc \(1 to 1 replicas\) scales this InferenceService' "a Warning Event says it too"
kc -n "$ns" delete hpa llm-isvc >/dev/null
if wait_until 20 reason_is AsExpected; then pass "the HPA deleted: Degraded AsExpected"; else fail "Degraded: $(cond llm Degraded reason)"; fi

check_operator_logs "$tmp/op.log"
summary
