#!/usr/bin/env bash
# A drain under way when a rollout starts, through a real kubelet and
# kube-proxy. 2 -> 1 while each pod streams an answer of ~30 s: the victim
# leaves Ready and waits for its stream. A new revision a moment later:
# the scale-down waits for the rollout, so the victim goes back in service
# (DrainCancelled), kube-proxy sends it requests again, and the rollout
# replaces both pods with 2 serving at every poll (the code before kept
# the victim out of service: 1 serving until the first new pod was warm,
# then the Deployment took the not-Ready victim first). Once the rollout
# is over the scale-down is done, drained. Load through the ClusterIP from
# clients that keep their connections: 0 failed requests. The leader
# operator is replaced while the scale-down waits.
. "$(dirname "$0")/node_lib.sh"
begin node-drol
dir=$tmp
at_exit stop_loads
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
export KIS_TOKEN_MS=100
kis "$ns" dr 2 r1 60 1000
kc -n "$ns" wait --for=condition=Ready kis/dr --timeout=150s >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=dr 2
expect_code 0 $? "two warm pods of r1"
kip=$(cluster_ip "$ns" dr)
wait_until 30 routed "$kip" 8000; expect_code 0 $? "kube-proxy routes the ClusterIP $kip"
before=$(live_pods dr)

# A streamed answer of ~30 s on each pod, straight to its IP (nsenter execs
# curl: $! is curl), then 2 -> 1.
for p in $before; do
	nsenter --net="/var/run/netns/$KINFER_NODE_NETNS" curl -s -N -o /dev/null --max-time 60 \
		-X POST -d '{"stream":true,"max_tokens":300}' "http://$(j "pod/$p" '{.status.podIP}'):8000/v1/completions" &
	track_pid $!
done
sleep 2
kis "$ns" dr 1 r1 60 1000
victim=
draining() { for p in $before; do [ "$(reason_of "$p")" = Draining ] && victim=$p; done; [ -n "$victim" ]; }
wait_until 15 draining; expect_code 0 $? "2 -> 1: pod $victim draining, its stream in flight"
victim_ready() { [ "$(j "pod/$victim" '{.status.conditions[?(@.type=="Ready")].status}')" = "$1" ]; }
wait_until 10 victim_ready False; expect_code 0 $? "the victim is out of service (Ready False)"

t0=$SECONDS
kis "$ns" dr 1 r2 60 1000
back() { [ "$(reason_of "$victim")" = DrainCancelled ]; }
wait_until 20 back
expect_code 0 $? "a new revision: $victim back in service (DrainCancelled) at +$((SECONDS - t0)) s"
t_back=$((SECONDS - t0))
expect_match "$(j "pod/$victim" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].message}')" 'waits for the rollout' \
	"its gate says why: $(j "pod/$victim" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].message}')"
expect_match "$(j "pod/$victim" '{.metadata.annotations.kinfer\.io/draining-since}')" '^$' "its draining-since annotation is gone"
wait_until 10 victim_ready True; expect_code 0 $? "the victim is Ready again"
vip=$(j "pod/$victim" '{.status.podIP}')
served0=$(sim_metric "$vip" vllm:request_success_total)

# "seconds ready r2_ready" every half second: pods Ready and not being
# deleted, and those of them of r2.
poll_rev() {
	local t=$SECONDS
	while [ $((SECONDS - t)) -lt "$1" ]; do
		kc -n "$ns" get pods -l kinfer.io/service=dr -o jsonpath='{range .items[*]}{.metadata.annotations.kinfer\.io/model-revision}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.metadata.deletionTimestamp}{"\n"}{end}' |
			awk -v s=$((SECONDS - t)) '$2 == "True" && NF == 2 { n++; if ($1 == "r2") r++ } END { print s, n + 0, r + 0 }'
		sleep 0.5
	done >"$dir/ready.log"
}
poll_rev 180 &
poll_pid=$!
track_pid "$poll_pid"
load_start "$dir/load" "$kip:8000" 180 10; lp=$started_load
# The victim's own count of answers grows: kube-proxy sends it requests
# again (it may be replaced by the rollout a few seconds later).
served() { local n; n=$(sim_metric "$vip" vllm:request_success_total); [ "${n:-0}" -gt "${served0:-0}" ]; }
wait_until 15 served
expect_code 0 $? "kube-proxy sends the victim requests again (answered: ${served0:-?} -> $(sim_metric "$vip" vllm:request_success_total))"

# The leader goes away while the scale-down waits (graceful delete: its
# Lease is released, the other replica takes it). The new one knows of the
# deferral only what the pods and the Deployment say: it must not drain
# again before the rollout is over.
replace_leader "while the scale-down waits"

one_r2() { rolled dr r2 1; }
wait_until 150 one_r2
expect_code 0 $? "the rollout, then the scale-down: one pod of r2 left, Ready, at +$((SECONDS - t0)) s"
t_done=$((SECONDS - t0))
sleep 3
kill -TERM "$lp" 2>/dev/null; load_wait "$lp"; lg_pids=()
stop_pid "$poll_pid"

# Until both r2 pods served, 2 served at every poll; after, the scale-down.
rolling=$(awk '$3 < 2 { print } $3 >= 2 { exit }' "$dir/ready.log")
least=$(echo "$rolling" | awk 'NR == 1 || $2 < m { m = $2 } END { print m + 0 }')
polls=$(echo "$rolling" | grep -c .)
expect_match "$polls" '^([1-9][0-9]+)$' "the rollout was polled ($polls polls)"
expect_match "$least" '^[23]$' "2 pods serving at every poll of the rollout (least: $least)"
reached=$(awk '$3 >= 2 { print "yes"; exit }' "$dir/ready.log")
expect_match "$reached" '^yes$' "both r2 pods served before the scale-down"
shrunk=$(kc -n "$ns" get events --field-selector "involvedObject.name=dr" -o jsonpath='{range .items[*]}{.reason}{"\n"}{end}' | grep -cE '^(Drained|DrainHandedOver)$')
expect_match "$shrunk" '^[1-9][0-9]*$' "the scale-down's victim was drained ($shrunk drain Events)"
lf=$(summary_of "$dir/load" failed) ls=$(summary_of "$dir/load" sent)
expect_match "${ls:-0}" '^[1-9][0-9]*$' "load ran through the ClusterIP ($ls requests)"
expect_match "${lf:-x}" '^0$' "0 failed requests (of ${ls:-?})" ||
	echo "the failed ones: $(load_failures "$dir/load")"
echo "figure: drain under way, then a revision, the leader replaced: victim back in service at +$t_back s, the rollout and the scale-down done at +$t_done s; least serving during the rollout $least; ${lf:-?} failed of ${ls:-?}"
summary
