#!/usr/bin/env bash
# Scenario: the warm-up gate and the drain proven with traffic. The model
# server simulator answers on the pods' IPs (3 s model load, first 3
# requests slow); kinfer-loadgen sends steady load only to Ready pods, as
# kube-proxy does, and for scale-downs keeps sending for 2 s after a pod
# left Ready or began terminating (endpoint propagation in a real cluster).
# Each comparison is made in this one run against a plain Deployment with
# the same pods and no kinfer: the figures are printed for the notes.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin traffic
bin=$sim_bin

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 3s --cold-requests 3 --cold-ms 800ms --latency-ms 50ms --capacity 8
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

pods_of() { kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
warm() { [ "$(j kis/svc '{.status.warmReplicas}')" = "$1" ] && [ "$(j kis/svc '{.status.replicas}')" = "$1" ]; }
ready_plain() { [ "$(j deploy/plain '{.status.readyReplicas}')" = "$1" ] && [ "$(j deploy/plain '{.status.replicas}')" = "$1" ]; }
field() { sed -n "s/^$2 //p" "$1" | head -1; }
# load NAME SECONDS [loadgen flags...]: start it in the background.
load() {
	local name=$1 secs=$2
	shift 2
	"$bin/kinfer-loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
		--selector "kinfer.io/service=$name" --rps 20 --duration "${secs}s" "$@" \
		>"$tmp/$name.$secs.out" 2>"$tmp/$name.$secs.err" &
	lg_pid=$!; track_pid "$lg_pid"
}
finish() { wait "$lg_pid"; untrack_pid "$lg_pid"; }
sim_total() { # sum a simulator counter over the pods of $1
	local p s=0 v
	for p in $(pods_of "$1"); do
		v=$(curl -s --max-time 2 "http://$(j "pod/$p" '{.status.podIP}'):8000/metrics" | awk -v n="$2" '$1 == n { print $2 }')
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

cat <<YAML | kc apply -f - >/dev/null
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: svc, namespace: $ns}
spec:
  model: {name: m, uri: s3://m}
  replicas: 1
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 3}
  drain: {timeoutSeconds: 60}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: plain, namespace: $ns}
spec:
  replicas: 1
  selector: {matchLabels: {kinfer.io/service: plain}}
  template:
    metadata: {labels: {kinfer.io/service: plain}}
    spec:
      containers: [{name: model-server, image: vllm/vllm-openai:v0.6.3, ports: [{name: http, containerPort: 8000}]}]
YAML
if wait_until 60 warm 1; then pass "kinfer: 1 warm pod"; else fail "not warm"; fi
if wait_until 60 ready_plain 1; then pass "plain: 1 ready pod"; else fail "plain not ready"; fi
# Warm the plain pod by hand once its model loaded, so both start warm.
sleep 4
for p in $(pods_of plain); do for _ in 1 2 3; do curl -s -o /dev/null -X POST -d '{}' "http://$(j "pod/$p" '{.status.podIP}'):8000/v1/completions"; done; done

# Scale-up 1 -> 3 under load: with the gate, then a plain Deployment.
load svc 14
sleep 3
kc -n "$ns" scale kis/svc --replicas=3 >/dev/null
finish
load plain 14
sleep 3
kc -n "$ns" scale deploy/plain --replicas=3 >/dev/null
finish
on_failed=$(field "$tmp/svc.14.out" failed) on_p99=$(field "$tmp/svc.14.out" p99_ms) on_max=$(field "$tmp/svc.14.out" max_ms)
off_failed=$(field "$tmp/plain.14.out" failed) off_p99=$(field "$tmp/plain.14.out" p99_ms) off_max=$(field "$tmp/plain.14.out" max_ms)
echo "scale-up 1->3 at 20 rps: gate on: failed=$on_failed p99=${on_p99} ms max=${on_max} ms | no gate: failed=$off_failed p99=${off_p99} ms max=${off_max} ms"
expect_match "$on_failed/$(field "$tmp/svc.14.out" no_endpoint)" '^0/0$' "with the gate: no failed request"
expect_match "$(sim_total svc kinfer_sim_traffic_before_warm_total)" '^0$' "with the gate: no request reached a pod before its warm-up finished"
before_plain=$(sim_total plain kinfer_sim_traffic_before_warm_total)
if [ "${off_failed:-0}" -gt 0 ] || [ "$(echo "$off_p99 > $on_p99" | bc)" = 1 ]; then
	pass "without the gate the same scale-up hurts: $off_failed failed, p99 $off_p99 ms (vs $on_p99 ms)"
else
	fail "no difference without the gate: $off_failed failed, p99 $off_p99 vs $on_p99"
fi
expect_match "$(j kis/svc '{.status.warmReplicas}')" '^3$' "kinfer ends with 3 warm pods"

# Scale-down 3 -> 1 under load with a 2 s endpoint lag: drain, then plain.
wait_until 60 warm 3 >/dev/null
load svc 16 --endpoint-lag 2s
sleep 3
kc -n "$ns" scale kis/svc --replicas=1 >/dev/null
finish
load plain 16 --endpoint-lag 2s
sleep 3
kc -n "$ns" scale deploy/plain --replicas=1 >/dev/null
finish
d_failed=$(field "$tmp/svc.16.out" failed) p_failed=$(field "$tmp/plain.16.out" failed)
echo "scale-down 3->1 at 20 rps, 2 s endpoint lag: kinfer drain: failed=$d_failed of $(field "$tmp/svc.16.out" sent) | plain Deployment: failed=$p_failed of $(field "$tmp/plain.16.out" sent)"
expect_match "$d_failed" '^0$' "with kinfer's drain: no failed request"
if [ "${p_failed:-0}" -gt 0 ]; then pass "the plain Deployment's scale-down fails $p_failed request(s)"; else fail "plain scale-down failed none (cannot show the difference)"; fi
expect_match "$(j deploy/svc '{.spec.replicas}')" '^1$' "kinfer ended at 1 replica"
summary
