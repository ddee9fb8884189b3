#!/usr/bin/env bash
# A rollout on a full node, through a real kubelet and kube-proxy, under
# load, with the leader operator replaced in the middle. The service's 2
# replicas take 4 GPUs each: all 8 of kinfer-node-0. A new model revision's
# extra pod (maxSurge 1) fits nowhere; after 30 s kinfer goes on one pod at
# a time (maxSurge 0, maxUnavailable 1). Then the leader operator pod is
# deleted (as a rollout or a node drain of kinfer itself would), and the
# replica that takes the Lease must keep one at a time (it has no memory of
# the 30 s, only the Deployment) and bring the surge back once done. Each
# old pod goes through its preStop and drain with requests of 2 s in flight
# from clients that keep their connections; each new pod takes the freed
# GPUs and gets traffic only once warm. Asserted: 0 failed requests, at
# least 1 pod Ready at every poll, both pods of the new revision, the
# surge back.
. "$(dirname "$0")/node_lib.sh"
begin node-rfull
dir=$tmp
at_exit stop_loads
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
KIS_GPUS=4 kis "$ns" fr 2 r1 20 2000
kc -n "$ns" wait --for=condition=Ready kis/fr --timeout=150s >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=fr 2
expect_code 0 $? "two warm pods of 4 GPUs each"
# GPUs the node's live pods ask for: the node is full.
gpus_used() {
	kc get pods -A --field-selector spec.nodeName=kinfer-node-0 -o jsonpath='{range .items[*]}{.status.phase}{" "}{.spec.containers[*].resources.requests.nvidia\.com/gpu}{"\n"}{end}' |
		awk '$1 != "Succeeded" && $1 != "Failed" { for (i = 2; i <= NF; i++) s += $i } END { print s + 0 }'
}
expect_match "$(gpus_used)" '^8$' "the pods hold all 8 GPUs of kinfer-node-0"
kip=$(cluster_ip "$ns" fr)
wait_until 30 routed "$kip" 8000; expect_code 0 $? "kube-proxy routes the ClusterIP $kip"
old_pods=$(kc -n "$ns" get pods -l kinfer.io/service=fr -o jsonpath='{.items[*].metadata.name}')
load_start "$dir/load" "$kip:8000" 300 10; lp=$started_load
sleep 5 # requests of 2 s in flight on both pods, over kept connections

poll_ready fr "$dir/ready.log" 300 0.5 &
poll_pid=$!
track_pid "$poll_pid"

expect_match "$(strategy fr)" '^1/0$' "the Deployment adds before it removes"
t0=$SECONDS
KIS_GPUS=4 kis "$ns" fr 2 r2 20 2000
stuck() { [ "$(cond fr Degraded reason)" = Unschedulable ]; }
wait_until 40 stuck; expect_code 0 $? "r2's extra pod fits nowhere: Degraded Unschedulable"
one_at_a_time() { [ "$(strategy fr)" = 0/1 ]; }
wait_until 60 one_at_a_time
expect_code 0 $? "kinfer goes one pod at a time at +$((SECONDS - t0)) s"
t_switch=$((SECONDS - t0))

# The leader goes away in the middle (graceful delete: its Lease is
# released or runs out, the other replica takes it).
replace_leader mid-rollout

done_r2() { rolled fr r2 2; }
wait_until 200 done_r2
expect_code 0 $? "the rollout completes: 2 pods of r2, warm and Ready, at +$((SECONDS - t0)) s"
t_done=$((SECONDS - t0))
surge_back() { [ "$(strategy fr)" = 1/0 ]; }
wait_until 30 surge_back; expect_code 0 $? "the new leader brings the surge back (maxSurge 1, maxUnavailable 0)"
kc -n "$ns" wait --for=condition=Ready kis/fr --timeout=30s >/dev/null
expect_code 0 $? "the InferenceService is Ready"
sleep 3
kill -TERM "$lp" 2>/dev/null; load_wait "$lp"; lg_pids=()
stop_pid "$poll_pid"

lf=$(summary_of "$dir/load" failed) ls=$(summary_of "$dir/load" sent)
expect_match "${ls:-0}" '^[1-9][0-9]*$' "load ran through the ClusterIP ($ls requests)"
expect_match "${lf:-x}" '^0$' "0 failed requests through the rollout and the leader change (of ${ls:-?})" ||
	echo "the failed ones: $(load_failures "$dir/load")"
min=$(ready_least "$dir/ready.log")
samples=$(wc -l <"$dir/ready.log")
expect_match "$min" '^[12]$' "at least one pod Ready at every poll (least: $min, $samples polls)"
for p in $(kc -n "$ns" get pods -l kinfer.io/service=fr -o jsonpath='{.items[*].metadata.name}'); do
	case " $old_pods " in *" $p "*) fail "pod $p is an old one" && continue ;; esac
	ip=$(kc -n "$ns" get pod "$p" -o jsonpath='{.status.podIP}')
	b=$(sim_metric "$ip" kinfer_sim_traffic_before_warm_total)
	w=$(sim_metric "$ip" kinfer_sim_warmup_requests_total)
	expect_match "${b:-x}/${w:-x}" '^0/([3-9]|[1-9][0-9]+)$' "new pod $p: warmed ($w warm-up requests), no request before (${b:-?})"
done
echo "figure: full node, 2 x 4 GPUs: one at a time at +$t_switch s, leader replaced, rollout done at +$t_done s; ${lf:-?} failed of ${ls:-?}; least Ready $min"
summary
