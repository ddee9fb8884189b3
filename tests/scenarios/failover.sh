#!/usr/bin/env bash
# Scenario: the operator is killed in the middle of a drain; a second
# replica takes the lease and finishes it from the state kept in the pods:
# the requests in flight complete, the drained pods are the ones removed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin failover
curls=()
at_exit 'for p in "${curls[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done'
at_exit 'kc -n "$ns" delete lease "kinfer-$ns" >/dev/null 2>&1'

install_crd
kc create ns "$ns" >/dev/null
# Requests take 8 s: the drain is still waiting when the leader dies.
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 8s
args=(--watch-namespace "$ns" --leader-election-namespace "$ns" --leader-election-id "kinfer-$ns"
	--lease-duration 6s --renew-deadline 4s --retry-period 1s)
start_operator "$tmp/a.log" "${args[@]}" || exit 1
a_pid=$started_pid

apply_isvc svc <<YAML
  replicas: 2
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, requestTimeoutSeconds: 20}
  drain: {timeoutSeconds: 60}
YAML
warm2() { [ "$(j kis/svc '{.status.warmReplicas}')" = 2 ]; }
if wait_until 60 warm2; then pass "2 warm pods"; else fail "not warm"; fi
pods=$(kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{.items[*].metadata.name}')
for p in $pods; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 40 -X POST -d '{}' "http://$(j "pod/$p" '{.status.podIP}'):8000/v1/completions" >>"$tmp/codes" &
	curls+=($!)
done
sleep 1
kc -n "$ns" scale kis/svc --replicas=1 >/dev/null
draining() { for p in $pods; do [ "$(reason_of "$p")" = Draining ] && return 0; done; return 1; }
if wait_until 10 draining; then pass "a pod is draining"; else fail "no drain started"; fi
victim=$(for p in $pods; do [ "$(reason_of "$p")" = Draining ] && echo "$p"; done)
kill -KILL "$a_pid"
pass "leader killed mid-drain (SIGKILL)"
expect_match "$(j deploy/svc '{.spec.replicas}')" '^2$' "the Deployment still has 2 replicas"
start_operator "$tmp/b.log" "${args[@]}" || exit 1
shrunk() { [ "$(j deploy/svc '{.spec.replicas}')" = 1 ]; }
if wait_until 40 shrunk; then pass "the new leader finished the drain: 1 replica"; else fail "still $(j deploy/svc '{.spec.replicas}') replicas"; fi
expect_match "$(grep -h 'became the leader' "$tmp/b.log" | head -1)" 'became the leader' "the second operator took the lease"
wait "${curls[@]}"
curls=()
expect_match "$(sort "$tmp/codes" | uniq -c | tr -s ' ')" '^ 2 200$' "both in-flight requests completed with 200"
gone() { ! kc -n "$ns" get pod "$victim" >/dev/null 2>&1; }
if wait_until 20 gone; then pass "the drained pod $victim is the one removed"; else fail "$victim still there"; fi
summary
