#!/usr/bin/env bash
# The leader operator pod is force-deleted (`kubectl delete pod
# --grace-period=0 --force`) in the middle of a drain: the other replica
# takes the Lease and finishes the scale-down; the requests in flight on the
# draining pods (4 s each) and the steady load on the ClusterIP all succeed.
. "$(dirname "$0")/node_lib.sh"
begin node-failover
dir=$tmp
at_exit stop_loads
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
kis "$ns" fo 3 r1 20 4000
kc -n "$ns" wait --for=condition=Ready kis/fo --timeout=150s >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=fo 3
expect_code 0 $? "three warm pods"
kip=$(cluster_ip "$ns" fo)
wait_until 30 routed "$kip" 8000; expect_code 0 $? "kube-proxy routes the ClusterIP $kip"
load_start "$dir/load" "$kip:8000" 300 10; lp=$started_load
sleep 6   # requests of 4 s in flight on every pod

old=$(lease)
old_pod=${old%_*}
kc -n "$ns" scale kis/fo --replicas=1 >/dev/null
draining() {
	kc -n "$ns" get pods -l kinfer.io/service=fo \
		-o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}{"\n"}{end}' |
		grep -q '^Draining$'
}
wait_until 30 draining; expect_code 0 $? "kinfer drains the victims before the scale-down"
replicas=$(kc -n "$ns" get deploy fo -o jsonpath='{.spec.replicas}')
expect_match "$replicas" '^3$' "mid-drain: the Deployment still has 3 replicas"
kill_at=$(date +%s%3N)
kc -n kinfer-system delete pod "$old_pod" --grace-period=0 --force >/dev/null 2>&1
expect_code 0 $? "the leader $old_pod is force-deleted mid-drain"

t0=$SECONDS
wait_until 60 new_leader "$old"; expect_code 0 $? "another replica takes the Lease ($(lease), after $((SECONDS - t0)) s)"
finished() { pods_total "$ns" kinfer.io/service=fo 1 && pods_ready "$ns" kinfer.io/service=fo 1; }
wait_until 240 finished; expect_code 0 $? "the new leader finishes the scale-down: 1 pod left ($((SECONDS - t0)) s after the kill)"
replicas=$(kc -n "$ns" get deploy fo -o jsonpath='{.spec.replicas}')
expect_match "$replicas" '^1$' "the Deployment has 1 replica"
sleep 2
kill -TERM "$lp" 2>/dev/null; load_wait "$lp"; lg_pids=()
lf=$(summary_of "$dir/load" failed) ls=$(summary_of "$dir/load" sent)
load_t0=$(summary_of "$dir/load" start_unix_ms)
kill_ms=$((kill_at - ${load_t0:-$kill_at}))
expect_match "${ls:-0}" '^[1-9][0-9]*$' "load ran through the ClusterIP ($ls requests)"
expect_match "${lf:-x}" '^0$' "0 failed requests across the failover (of ${ls:-?})" ||
	echo "the failed ones (the kill at +${kill_ms:-?} ms): $(load_failures "$dir/load")"
echo "figure: leader killed mid-drain: new leader after the kill, scale-down finished $((SECONDS - t0)) s after it; ${lf:-?} failed of ${ls:-?}"
summary
