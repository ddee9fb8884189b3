#!/usr/bin/env bash
# A scale-down under load from clients that keep their connections (HTTP
# keep-alive through the ClusterIP, as the OpenAI SDKs and most proxies
# do). Leaving the endpoints stops new connections only: kube-proxy keeps
# an open connection on its pod, so the victims go on getting requests and
# their in-flight count never reaches zero. kinfer sees the requests still
# arriving (the pods' own counters) after the minimum drain time and hands
# the victims to their shutdown (which closes those connections) at once,
# with an Event DrainHandedOver, instead of holding them for the whole
# drain timeout and then warning DrainTimedOut. No request fails.
. "$(dirname "$0")/node_lib.sh"
begin node-drain
dir=$tmp
at_exit stop_loads
timeout_s=60
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
kis "$ns" kd 3 r1 "$timeout_s" 4000
kc -n "$ns" wait --for=condition=Ready kis/kd --timeout=150s >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=kd 3
expect_code 0 $? "three warm pods (requests of 4 s, drain timeout $timeout_s s)"
kip=$(cluster_ip "$ns" kd)
load_start "$dir/load" "$kip:8000" 120 10; lp=$started_load
sleep 8 # every pod holds requests, over connections the client reuses

# leader_pod: the operator pod holding the Lease (its identity is HOSTNAME_RANDOM).
leader_pod() {
	local holder
	holder=$(lease)
	echo "${holder%_*}"
}
# handed_metric: the leader's kinfer_drain_victims_total{outcome="handed_over"} (0 when absent).
handed_metric() {
	local lip
	lip=$(kc -n kinfer-system get pod "$(leader_pod)" -o jsonpath='{.status.podIP}')
	in_node curl -s --max-time 3 "http://$lip:8080/metrics" |
		awk '$1 == "kinfer_drain_victims_total{outcome=\"handed_over\"}" { v = $2 } END { print v + 0 }'
}
h0=$(handed_metric)
before=$(kc -n "$ns" get pods -l kinfer.io/service=kd -o jsonpath='{.items[*].metadata.name}')
t0=$(date +%s%3N)
kc -n "$ns" scale kis/kd --replicas=1 >/dev/null
# victims: the pods whose gate says Draining; removed: given a deletionTimestamp.
victims() {
	kc -n "$ns" get pods -l kinfer.io/service=kd \
		-o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}{"\n"}{end}' |
		awk '$2 == "Draining" { print $1 }'
}
two_victims() { [ "$(victims | wc -l)" = 2 ]; }
wait_until 30 two_victims; expect_code 0 $? "kinfer drains two victims"
v=$(victims | sort | tr '\n' ' ')
removed() {
	[ "$(kc -n "$ns" get pods -l kinfer.io/service=kd -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"\n"}{end}' | grep -c .)" = 2 ]
}
wait_until 40 removed; expect_code 0 $? "the victims are removed"
removed_ms=$(($(date +%s%3N) - t0))
[ "$removed_ms" -lt $((timeout_s * 1000 / 2)) ]
expect_code 0 $? "removed well before the $timeout_s s drain timeout ($removed_ms ms): the requests still arriving were seen"
handed() { kc -n "$ns" get events --field-selector "involvedObject.name=kd,reason=DrainHandedOver" -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null; }
two_handed() { [ "$(handed | grep -c 'HTTP keep-alive')" -ge 2 ]; }
wait_until 40 two_handed; expect_code 0 $? "an Event DrainHandedOver for each victim"
h=$(handed)
for p in $v; do
	expect_match "$h" "pod $p still got [1-9][0-9]* new request" "the Event names $p and the requests that still reached it"
done
echo "Event: $(echo "$h" | head -1)"
h1=$(handed_metric)
expect_match "$((h1 - h0))" '^2$' "the leader counts them: kinfer_drain_victims_total{outcome=\"handed_over\"} $h0 -> $h1"
decided=$(kc -n kinfer-system logs "$(leader_pod)" | grep -c "\"msg\":\"drained\",\"service\":\"$ns/kd\"")
expect_match "$decided" '^1$' "the leader decided the shrink once (\"drained\" in its log)"
timed_out=$(kc -n "$ns" get events --field-selector "involvedObject.name=kd,reason=DrainTimedOut" -o name 2>/dev/null | wc -l)
expect_match "$timed_out" '^0$' "no DrainTimedOut Warning"
one_left() { pods_total "$ns" kinfer.io/service=kd 1 && pods_ready "$ns" kinfer.io/service=kd 1; }
wait_until 90 one_left; expect_code 0 $? "one pod left, serving"
# The one left is the survivor, never drained: a reconcile that read the
# Deployment before the cache showed kinfer's own shrink once took the
# survivor for a victim too and applied 3 replicas again (two pods made
# anew, seconds with no ready endpoint).
left=$(kc -n "$ns" get pods -l kinfer.io/service=kd -o jsonpath='{.items[*].metadata.name}')
survivor=$(for p in $before; do case " $v " in *" $p "*) ;; *) echo "$p" ;; esac; done)
expect_match "$left" "^${survivor:-none}\$" "the pod left is the survivor $survivor, never drained (left: $left)"
made=$(kc -n "$ns" get events --field-selector reason=SuccessfulCreate -o jsonpath='{range .items[*]}{.involvedObject.kind}{"\n"}{end}' | grep -c '^ReplicaSet$')
expect_match "$made" '^3$' "the ReplicaSet made no pod after the scale-down (3 made in all)"
done_ms=$(($(date +%s%3N) - t0))
sleep 2
kill -TERM "$lp" 2>/dev/null; load_wait "$lp"; lg_pids=()
lf=$(summary_of "$dir/load" failed) ls=$(summary_of "$dir/load" sent)
expect_match "${ls:-0}" '^[1-9][0-9]*$' "load ran through the ClusterIP ($ls requests)"
expect_match "${lf:-x}" '^0$' "0 failed requests (of ${ls:-?})" ||
	echo "the failed ones: $(load_failures "$dir/load")"
echo "figure: keep-alive load, scale 3 -> 1: victims removed ${removed_ms} ms after the scale (drain timeout ${timeout_s} s), one pod left after ${done_ms} ms (the template's preStop pause, then the server's shutdown); ${lf:-?} failed of ${ls:-?}"
summary
