#!/usr/bin/env bash
# Scenario: drain-before-terminate with the model-server simulator. On a
# scale-down the pods that will go leave Ready first (reason Draining), the
# Deployment keeps its replicas while a request is still in flight on them,
# the request completes, exactly those pods are removed (pod-deletion-cost),
# and Events tell the story. A scale-up in the middle of a drain puts the
# pods back in service without restarting them.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin drain
curls=()
watcher=
at_exit 'for p in "${curls[@]}" $watcher; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done'

install_crd
kc create ns "$ns" >/dev/null
# Every request takes 6 s: long enough to be in flight during the drain.
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 6s
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

pods() { kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
warm() { [ "$(j kis/svc '{.status.warmReplicas}')" = "$1" ]; }
deploy_replicas() { j deploy/svc '{.spec.replicas}'; }

apply_isvc svc <<YAML
  replicas: 3
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, requestTimeoutSeconds: 20}
  drain: {timeoutSeconds: 60}
YAML
if wait_until 60 warm 3; then pass "3 pods warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
before=$(pods)

# A request in flight on every pod, then scale down to 1.
curls=()
for p in $before; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST -d '{}' "http://$(j "pod/$p" '{.status.podIP}'):8000/v1/completions" >> "$tmp/codes" &
	curls+=($!)
done
sleep 1
# Every spec.replicas the Deployment takes, from a watch.
kc_bg -n "$ns" get deploy/svc -w -o jsonpath='{.spec.replicas}{"\n"}' > "$tmp/replicas" 2>/dev/null &
watcher=$!
kc -n "$ns" scale kis/svc --replicas=1 >/dev/null
draining() { [ "$(for p in $before; do reason_of "$p"; echo; done | grep -c '^Draining$')" = 2 ]; }
if wait_until 10 draining; then pass "2 pods leave service first (reason Draining)"; else fail "no Draining pods: $(for p in $before; do echo "$p $(reason_of "$p")"; done)"; fi
victims=$(for p in $before; do [ "$(reason_of "$p")" = Draining ] && echo "$p"; done)
for p in $victims; do
	expect_match "$(j "pod/$p" '{.status.conditions[?(@.type=="Ready")].status}')" '^False$' "$p is no longer Ready (out of the endpoints)"
done
sleep 2
expect_match "$(deploy_replicas)" '^3$' "the Deployment keeps 3 replicas while requests are in flight"
wait "${curls[@]}"
curls=()
expect_match "$(sort "$tmp/codes" | uniq -c | tr -s ' ')" '^ 3 200$' "every in-flight request completed with 200"
shrunk() { [ "$(deploy_replicas)" = 1 ]; }
if wait_until 20 shrunk; then pass "then the Deployment goes to 1"; else fail "Deployment stays at $(deploy_replicas)"; fi
expect_match "$(metric "$started_port" 'kinfer_drain_victims_total{outcome="drained"}')" '^2$' "kinfer_drain_victims_total{outcome=\"drained\"} 2 (no request left on them)"
for p in $victims; do
	expect_match "$(j "pod/$p" '{.metadata.annotations.controller\.kubernetes\.io/pod-deletion-cost}')" '^-2147483648$|^$' "$p marked with the lowest pod-deletion-cost (or already gone)"
done
left() { [ "$(pods | wc -l)" = 1 ]; }
if wait_until 20 left; then pass "one pod left"; else fail "pods left: $(pods)"; fi
survivor=$(pods)
if printf '%s\n' $victims | grep -qx "$survivor"; then fail "a drained pod survived: $survivor"; else pass "the pod left is the one not drained ($survivor)"; fi
expect_match "$(kc -n "$ns" get events --field-selector involvedObject.name=svc -o jsonpath='{.items[*].reason}')" 'Draining.*Drained|Drained.*Draining' "Events: Draining, then Drained"
kill -TERM "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; watcher=
# Once shrunk, never grown back: a reconcile reading the Deployment before
# the cache showed kinfer's own shrink once drained the survivor as well
# and applied the old replicas again (the ReplicaSet made two pods anew).
expect_match "$(uniq "$tmp/replicas" | tr '\n' ' ')" '^3 1 $' "the Deployment's replicas went 3 -> 1 and stayed (watched: $(tr '\n' ' ' < "$tmp/replicas"))"
# ... and decided once: the reconcile the victims' own changes bring right
# after the shrink reads the cache before it shows the new Deployment (old
# operator: "drained" twice, 20 ms apart).
expect_match "$(grep -c 'msg="drained"' "$tmp/op.log")" '^1$' "the shrink is decided once (one \"drained\" in the operator's log)"

# A scale-up mid-drain cancels it: same pods, back in service.
kc -n "$ns" scale kis/svc --replicas=3 >/dev/null
if wait_until 60 warm 3; then pass "back to 3 warm pods"; else fail "not warm: $(j kis/svc '{.status}')"; fi
before=$(pods)
kc -n "$ns" scale kis/svc --replicas=1 >/dev/null
if wait_until 10 draining; then pass "draining again"; else fail "no drain"; fi
kc -n "$ns" scale kis/svc --replicas=3 >/dev/null
back() { [ "$(for p in $before; do reason_of "$p"; echo; done | grep -c '^DrainCancelled$')" = 2 ]; }
if wait_until 10 back; then pass "scale-up mid-drain: the 2 pods are back in service (DrainCancelled)"; else fail "not cancelled: $(for p in $before; do echo "$p $(reason_of "$p")"; done)"; fi
expect_match "$(pods | tr '\n' ' ')" "^$(printf '%s ' $before)$" "the same 3 pods, none restarted"
expect_match "$(deploy_replicas)" '^3$' "the Deployment never went below 3"

# A drain whose start kinfer cannot count from: kinfer.io/draining-since
# ahead of the operator's clock (written by a replica whose clock runs
# ahead, or by hand), then removed. The old operator counted the wait from
# it and waited for ever: the minimum never passed, the timeout never came,
# and the Deployment kept its replicas. Now the start is written anew, with
# a Warning, and the drain ends as any other.
restarted_drain() { # FROM TO HOW
	local from=$1 to=$2 how=$3 victim= p
	before=$(pods)
	curls=()
	for p in $before; do
		curl -s -o /dev/null --max-time 30 -X POST -d '{}' "http://$(j "pod/$p" '{.status.podIP}'):8000/v1/completions" &
		curls+=($!)
	done
	sleep 1
	kc -n "$ns" scale kis/svc --replicas="$to" >/dev/null
	one() { [ "$(for p in $before; do reason_of "$p"; echo; done | grep -c '^Draining$')" = 1 ]; }
	if wait_until 10 one; then pass "$from -> $to: one pod draining"; else fail "$from -> $to: no drain: $(for p in $before; do echo "$p $(reason_of "$p")"; done)"; fi
	for p in $before; do [ "$(reason_of "$p")" = Draining ] && victim=$p; done
	if [ "$how" = ahead ]; then
		kc -n "$ns" annotate --overwrite "pod/$victim" "kinfer.io/draining-since=$(($(date +%s) + 86400))" >/dev/null
	else
		kc -n "$ns" annotate "pod/$victim" kinfer.io/draining-since- >/dev/null
	fi
	to_size() { [ "$(deploy_replicas)" = "$to" ]; }
	if wait_until 30 to_size; then pass "$from -> $to with the drain's start $how: the Deployment goes to $to (drained from a new start)"; else fail "$from -> $to with the drain's start $how: the Deployment stays at $(deploy_replicas)"; fi
	wait "${curls[@]}" 2>/dev/null
	curls=()
}
restarted_drain 3 2 ahead
restarted_drain 2 1 removed
restarted() { kc -n "$ns" get events --field-selector involvedObject.name=svc,reason=DrainRestarted -o jsonpath='{range .items[*]}{.type} {.message}{"\n"}{end}'; }
has_both() { [ "$(restarted | grep -c '^Warning ')" = 2 ]; }
wait_until 30 has_both
expect_match "$(restarted)" 'start [0-9]+ s ahead of this clock' "a Warning DrainRestarted for the start ahead of the clock"
expect_match "$(restarted)" 'draining without a start' "a Warning DrainRestarted for the start removed"
summary
