#!/usr/bin/env bash
# Scenario: the load generator against the model-server simulator. It
# follows pod readiness as kube-proxy follows EndpointSlices (loopback pod
# IPs have none here): with two Ready pods, every request of a 10 s run at
# 30 rps is answered, none finds no endpoint, and both pods get traffic.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin loadgen
loadgen=$sim_bin/kinfer-loadgen

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-ms 200ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

apply_isvc llm <<YAML
  replicas: 2
  resources: {gpu: {count: 1}}
YAML
if kc -n "$ns" wait --for=condition=Ready kis/llm --timeout=60s >/dev/null; then
	pass "InferenceService Ready with 2 replicas"
else
	fail "not Ready: $(kc -n "$ns" get kis/llm -o jsonpath='{.status}')"
fi

# Bad flags exit 2 and send nothing.
"$loadgen" --namespace "$ns" --duration 1s >/dev/null 2>&1
expect_code 2 $? "a missing --selector exits 2"

"$loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
	--selector kinfer.io/service=llm --rps 30 --duration 10s --timeout 5s \
	--out "$tmp/requests.jsonl" >"$tmp/summary" 2>"$tmp/lg.log" &
lg_pid=$!
track_pid "$lg_pid"
wait "$lg_pid"
code=$?
untrack_pid "$lg_pid"
expect_code 0 "$code" "the load generator stops by itself and exits 0"
val() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/summary"; }
expect_match "$(val requests)/$(val sent)/$(val ok)" '^300/300/300$' "300 requests, 300 sent, 300 ok"
expect_match "$(val failed)" '^0$' "0 failed"
expect_match "$(val no_endpoint)" '^0$' "0 no_endpoint"
expect_match "$(val dropped_overload)" '^0$' "0 dropped_overload"
expect_match "$(val pods)" '^2$' "both pods got traffic"
for p in $(kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{.items[*].metadata.name}'); do
	expect_match "$(val "pod.$p.ok")" '^1[0-9][0-9]$' "$p: served its share ($(val "pod.$p.ok") of 300)"
done
expect_match "$(wc -l <"$tmp/requests.jsonl")" '^300$' "--out has one line per request"
expect_match "$(tail -1 "$tmp/summary")" '^\{"requests":300,.*"pods":\{' "the summary ends with a JSON line"
summary
