#!/usr/bin/env bash
# Scenario (issue 12 item 1): one InferenceService kinfer cannot read never
# stops it for anyone else. Its spec.warmup.body nests 40 objects, which
# the API server and the CRD accept (this scenario runs no webhook, as a
# cluster with failurePolicy Ignore and the webhook down would be). Before
# the fix the informer relisted forever ("LIST page unusable: Bad
# message"), every InferenceService applied afterwards got no Deployment,
# and after a restart the cache never synced (/readyz 503). Now: the bad
# one is skipped (counted in kinfer_informer_objects_skipped_total, logged
# once, a Warning Event on it), the others get their Deployments, and a
# restart with the bad one present syncs and is ready.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin unreadable

install_crd
kc create ns "$ns" >/dev/null

isvc() { # NAME [BODY]
	cat <<YAML
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: $1, namespace: $ns}
spec:
  model: {name: opt-125m, uri: hf://facebook/opt-125m, framework: vllm}
  replicas: 1
  resources: {gpu: {count: 1}}
YAML
	[ -n "${2:-}" ] && printf '  warmup: {path: /v1/completions, body: %s}\n' "$2"
}
deep='1'
for _ in $(seq 1 40); do deep="{\"a\": $deep}"; done
skipped() { curl -s --max-time 2 "http://127.0.0.1:$1/metrics" |
	awk '/^kinfer_informer_objects_skipped_total\{kind="InferenceService",reason="too_deep"\}/ { print $2 }'; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz")" = 200 ]; }

start_operator "$tmp/op1.log" --leader-elect=false --resync-period 5s --watch-namespace "$ns" || exit 1
port=$started_port
if wait_until 30 ready "$port"; then pass "operator ready"; else fail "operator not ready: $(tail -5 "$tmp/op1.log")"; fi

isvc deep "$deep" | kc apply -f - >/dev/null
expect_code 0 $? "the API server stores the 40-deep warm-up body (no webhook here)"
isvc fine | kc apply -f - >/dev/null
if wait_until 30 j deploy/fine '{.metadata.name}' >/dev/null; then
	pass "an InferenceService applied after the unreadable one gets its Deployment"
else
	fail "no Deployment for fine: $(grep -E 'unusable|skipped' "$tmp/op1.log" | tail -3)"
fi
expect_match "$(j deploy/deep '{.metadata.name}' || true)" '^$' "the unreadable one gets nothing"
have_skip() { [ "$(skipped "$port")" -ge 1 ] 2>/dev/null; }
if wait_until 10 have_skip; then pass "kinfer_informer_objects_skipped_total{kind=\"InferenceService\",reason=\"too_deep\"} = $(skipped "$port")"; else fail "no skip counted"; fi
expect_match "$(grep 'object skipped' "$tmp/op1.log")" "kind=InferenceService namespace=$ns name=deep reason=too_deep detail=.*field spec.warmup.body.a.a" "logged with namespace/name and the field"
expect_match "$(grep -c 'object skipped' "$tmp/op1.log")" '^1$' "logged once"
expect_match "$(grep -c 'unusable' "$tmp/op1.log")" '^0$' "no 'stream unusable' or 'LIST page unusable'"
warn_event() { kc -n "$ns" get events --field-selector involvedObject.name=deep,reason=Unreadable \
	-o jsonpath='{range .items[*]}{.type} {.note}{.message}{"\n"}{end}' 2>/dev/null | grep -q '^Warning .*spec.warmup.body.a'; }
if wait_until 15 warn_event; then pass "a Warning Event Unreadable on kis/deep names the field"; else fail "no Warning Event: $(kc -n "$ns" get events -o wide 2>&1 | tail -3)"; fi

# A restart with the unreadable object present: the cache syncs, /readyz 200.
stop_operators
start_operator "$tmp/op2.log" --leader-elect=false --resync-period 5s --watch-namespace "$ns" || exit 1
port=$started_port
if wait_until 30 ready "$port"; then pass "after a restart with it present: cache synced, /readyz 200"; else
	fail "not ready after restart: $(curl -s "http://127.0.0.1:$port/readyz"); $(tail -3 "$tmp/op2.log")"; fi
expect_match "$(grep 'cache synced' "$tmp/op2.log" | grep -c 'kind=InferenceService')" '^1$' "the InferenceService cache synced"
isvc after | kc apply -f - >/dev/null
if wait_until 30 j deploy/after '{.metadata.name}' >/dev/null; then pass "a new InferenceService after the restart gets its Deployment"; else fail "no Deployment for after"; fi

# Fixed (flattened) it is read again; deleted, it is forgotten.
isvc deep '{"prompt": "hi", "max_tokens": 1}' | kc apply -f - >/dev/null
if wait_until 30 j deploy/deep '{.metadata.name}' >/dev/null; then pass "once flattened, kinfer reads it and creates its Deployment"; else fail "no Deployment for the fixed one"; fi
summary
