#!/usr/bin/env bash
# Scenario: warm-up gating with the model-server simulator answering on the
# pods' IPs. A pod becomes Ready only after its model loaded and answered
# the warm-up requests; nothing else reached it before; the condition says
# how it went. A model that fails warm-up is never Ready, the condition and
# an Event say why, and the pod is replaced after maxAttempts; one not
# healthy in time says what its health path answered last. Restarting
# the operator does not warm a warm pod again.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin warmup

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 3s --cold-ms 300ms --fail-warmup-prefix broken- --slow-load-prefix slow-
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

pods_of() { kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
ip_of() { j "pod/$1" '{.status.podIP}'; }
sim_metric() { curl -s --max-time 2 "http://$(ip_of "$1"):8000/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }

apply_isvc good <<YAML
  model: {name: opt-1b, uri: hf://facebook/opt-1.3b, framework: vllm}
  replicas: 2
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, body: {prompt: "Hi", max_tokens: 4}, requests: 4, concurrency: 2}
YAML
t0=$SECONDS
if kc -n "$ns" wait --for=condition=Ready kis/good --timeout=60s >/dev/null; then
	pass "Ready after load and warm-up ($((SECONDS - t0)) s from apply)"
else
	fail "not Ready: $(j kis/good '{.status}')"
fi
# Ready may turn True with the minimum ready (MinimumReplicasReady): wait,
# bounded, for both replicas rather than read the counts at once.
both_warm() { [ "$(j kis/good '{.status.warmReplicas}/{.status.readyReplicas}')" = 2/2 ]; }
wait_until 30 both_warm
expect_match "$(j kis/good '{.status.warmReplicas}/{.status.readyReplicas}')" '^2/2$' "2 warm, 2 ready"
expect_match "$(j kis/good '{.status.conditions[?(@.type=="WarmedUp")].status} {.status.conditions[?(@.type=="WarmedUp")].reason}')" '^True AllReplicasWarm$' "InferenceService condition WarmedUp=True"
for p in $(pods_of good); do
	expect_match "$(j "pod/$p" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}')" '^WarmupSucceeded$' "$p: warmed-up reason WarmupSucceeded"
	expect_match "$(j "pod/$p" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].message}')" '^4 warm-up request\(s\) answered' "$p: the message counts the requests"
	expect_match "$(sim_metric "$p" kinfer_sim_warmup_requests_total)" '^4$' "$p: the model server got exactly 4 warm-up requests"
	expect_match "$(sim_metric "$p" kinfer_sim_traffic_before_warm_total)" '^0$' "$p: no other request reached it before it was warm"
done

# A model that never warms.
sed 's/name: good/name: broken-model/; s/replicas: 2/replicas: 1/; s/concurrency: 2}/concurrency: 2, maxAttempts: 2}/' "$tmp/good.yaml" | kc apply -f - >/dev/null
first=
failed() { first=$(pods_of broken-model | head -1); [ -n "$first" ] &&
	[ "$(j "pod/$first" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}')" = WarmupFailed ]; }
if wait_until 30 failed; then pass "failed warm-up: condition False, reason WarmupFailed"; else fail "no WarmupFailed: $(kc -n "$ns" get pods -o yaml | grep -A3 warmed-up)"; fi
expect_match "$(j "pod/$first" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].message}')" 'attempt 1 of 2 failed: /v1/completions answered 500' "the message says which attempt and why"
expect_match "$(j "pod/$first" '{.metadata.annotations.kinfer\.io/warmup-attempts}')" '^1$' "the attempt is counted on the pod"
expect_match "$(j "pod/$first" '{.status.conditions[?(@.type=="Ready")].status}')" '^False$' "the pod is not Ready"
events=$(kc -n "$ns" get events --field-selector "involvedObject.name=$first" -o jsonpath='{.items[*].reason}')
expect_match "$events" 'WarmupFailed' "an Event says the warm-up failed"
replaced() { [ -n "$(pods_of broken-model | grep -v "^$first$")" ]; }
t0=$SECONDS
if wait_until 40 replaced; then pass "after 2 failed attempts the pod is replaced ($((SECONDS - t0)) s, backoff 10 s)"; else fail "pod not replaced: $(pods_of broken-model)"; fi
expect_match "$(kc -n "$ns" get events -o jsonpath='{.items[*].reason}')" 'WarmupGaveUp' "an Event says kinfer gave up on the pod"
expect_match "$(j kis/broken-model '{.status.conditions[?(@.type=="Ready")].status}')" '^False$' "the broken service is not Ready"
expect_match "$(j kis/broken-model '{.status.conditions[?(@.type=="WarmedUp")].reason}')" '^(WarmupFailed|Warming)$' "its WarmedUp condition says WarmupFailed (or Warming while the pod is replaced)"

# A model that is not healthy within spec.warmup.timeoutSeconds (its
# server answers 503 while it loads for 10 minutes): the message says what
# the health path answered last, not only that time ran out.
apply_isvc slow-model <<YAML
  model: {name: opt-1b, uri: hf://facebook/opt-1.3b, framework: vllm}
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, timeoutSeconds: 2, requestTimeoutSeconds: 1}
YAML
slow_msg() { j "pod/$(pods_of slow-model | head -1)" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].message}'; }
slow_failed() { [[ "$(slow_msg)" == *"not healthy"* ]]; }
wait_until 30 slow_failed
expect_match "$(slow_msg)" '^attempt 1 of 3 failed: the model server was not healthy within 2 s \(last: /health answered 503\)' \
	"not healthy in time: the message says what the health path answered last ($(slow_msg | cut -c1-100))"
kc -n "$ns" delete kis slow-model --wait=false >/dev/null

# The gate lives in the pods: a new operator does not warm them again.
stop_operators
start_operator "$tmp/op2.log" --leader-elect=false --watch-namespace "$ns" || exit 1
sleep 4
for p in $(pods_of good); do
	expect_match "$(sim_metric "$p" kinfer_sim_warmup_requests_total)" '^4$' "$p: still 4 warm-up requests after an operator restart"
done
expect_match "$(j kis/good '{.status.conditions[?(@.type=="Ready")].status}')" '^True$' "still Ready after the restart"
summary
