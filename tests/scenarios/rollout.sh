#!/usr/bin/env bash
# Scenario: a rolling update of the model version under steady load, with a
# 2 s endpoint propagation delay: zero failed requests and no request on a
# pod before its warm-up (new pods join only when warm; old pods are removed
# one at a time and, deleted by the Deployment controller, keep serving
# through the preStop pause kinfer puts in the template).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin rollout
bin=$sim_bin

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 3s --cold-requests 3 --cold-ms 800ms --latency-ms 50ms --capacity 8
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
field() { sed -n "s/^$2 //p" "$1" | head -1; }
rolled() { [ "$(j kis/svc '{.status.observedGeneration}')" = 2 ] &&
	[ "$(j kis/svc '{.status.conditions[?(@.type=="Ready")].reason}')" = AllReplicasReady ] &&
	[ "$(j deploy/svc '{.status.updatedReplicas}')" = 2 ] && [ "$(j deploy/svc '{.status.replicas}')" = 2 ]; }

apply_isvc svc <<YAML
  model: {name: m, uri: s3://m, revision: v1}
  replicas: 2
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 3}
YAML
warm2() { [ "$(j kis/svc '{.status.warmReplicas}')" = 2 ]; }
if wait_until 60 warm2; then pass "2 warm pods on revision v1"; else fail "not warm"; fi
old=$(kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{.items[*].metadata.name}')

"$bin/kinfer-loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
	--selector kinfer.io/service=svc --rps 20 --duration 30s --endpoint-lag 2s \
	--out "$tmp/requests.jsonl" >"$tmp/lg.out" 2>"$tmp/lg.err" &
lg_pid=$!; track_pid "$lg_pid"
sleep 3
kc -n "$ns" patch kis svc --type=merge -p '{"spec":{"model":{"revision":"v2"}}}' >/dev/null
if wait_until 25 rolled; then pass "rolled out to revision v2"; else fail "rollout: $(j kis/svc '{.status}')"; fi
wait "$lg_pid"; untrack_pid "$lg_pid"
echo "rolling update at 20 rps, 2 s endpoint lag: $(field "$tmp/lg.out" sent) sent, $(field "$tmp/lg.out" failed) failed, p99 $(field "$tmp/lg.out" p99_ms) ms"
if ! expect_match "$(field "$tmp/lg.out" failed)/$(field "$tmp/lg.out" no_endpoint)" '^0/0$' "zero failed requests during the rolling update"; then
	grep '"error":"' "$tmp/requests.jsonl" | head -20
	kc -n "$ns" get events --sort-by=.lastTimestamp 2>/dev/null | tail -30
fi
new=$(kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{.items[*].metadata.name}')
for p in $old; do
	if printf '%s\n' $new | grep -qx "$p"; then fail "old pod $p still there"; else pass "old pod $p replaced"; fi
done
before=0
for p in $new; do
	v=$(curl -s --max-time 2 "http://$(j "pod/$p" '{.status.podIP}'):8000/metrics" | awk '$1 == "kinfer_sim_traffic_before_warm_total" { print $2 }')
	before=$((before + ${v:-0}))
done
expect_match "$before" '^0$' "no request reached a new pod before its warm-up (no cold pod served)"
expect_match "$(field "$tmp/lg.out" p99_ms)" '^[0-9]{1,3}(\.[0-9]+)?$' "p99 stayed under a second (no cold request)"
summary
