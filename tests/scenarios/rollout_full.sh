#!/usr/bin/env bash
# Scenario: a rollout on a full cluster. The service's 2 replicas take both
# GPUs of the one node they may use (a KWOK node of this scenario's own,
# tainted and labelled, as placement.sh's); a new model revision needs a
# pod of the new template beside the old ones, and no node has room for it.
# The Deployment's rolling update (maxSurge 1, maxUnavailable 0) would wait
# for ever (the code before this: Degraded Unschedulable, never rolled).
# kinfer waits 30 s, sees that one old pod's place would take the new pod,
# and goes on one pod at a time (maxSurge 0, maxUnavailable 1, an Event
# RollingOneAtATime): one old pod goes, the new one takes its GPU and turns
# warm before the next old pod goes; one replica Ready at every moment; the
# Deployment back to maxSurge 1 once done. A revision that no node could
# ever take (a GPU product the cluster has not) is not helped that way: the
# old pods stay, all of them. A scale-down's drain under way when such a
# revision comes is called off: its victim serves again while the
# scale-down waits for a rollout that cannot finish.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin rfull
id=$ns
gpu_node "$id" 2
expect_code 0 $? "a node with 2 GPUs of this scenario's own"
install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 20ms --token-ms 100ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
# spec REVISION [PRODUCT]: 2 replicas of 1 GPU on the node.
spec() { gpu_spec "$id" "$1" 1 2 "${2:-}"; }
# seconds_short N: of N one-second polls, how many saw fewer than 2 pods Ready.
seconds_short() {
	local n=0
	for _ in $(seq 1 "$1"); do
		[ "$(ready_count svc)" = 2 ] || n=$((n + 1))
		sleep 1
	done
	echo "$n"
}
spec r1 | apply_isvc svc
warm2() { [ "$(j kis/svc '{.status.warmReplicas}')" = 2 ]; }
wait_until 90 warm2; expect_code 0 $? "2 replicas warm on the node's 2 GPUs"
expect_match "$(strategy svc)" '^1/0$' "the Deployment adds before it removes (maxSurge 1, maxUnavailable 0)"

poll_ready svc "$tmp/ready.log" 400 0.3 &
poll_pid=$!
track_pid "$poll_pid"

t0=$SECONDS
spec r2 | apply_isvc svc
stuck() { [ "$(cond svc Degraded reason)" = Unschedulable ]; }
wait_until 30 stuck; expect_code 0 $? "the new revision's extra pod fits nowhere: Degraded Unschedulable"
one_at_a_time() { [ "$(strategy svc)" = 0/1 ]; }
wait_until 60 one_at_a_time
expect_code 0 $? "after it waited, the Deployment replaces pods one at a time (maxSurge 0, maxUnavailable 1) at +$((SECONDS - t0)) s"
# The status says so while it rolls (written within its 2 s window).
says_one() { [[ "$(cond svc Progressing message)" == *"one at a time: no room for an extra pod"* ]]; }
wait_until 10 says_one
msg_ok=$? msg=$(cond svc Progressing message)
done_r2() { rolled svc r2 2; }
wait_until 150 done_r2
expect_code 0 $? "the rollout completes: 2 pods of r2, Ready (warm), at +$((SECONDS - t0)) s"
expect_code 0 "$msg_ok" "while it rolled, Progressing said so (last: $msg)"
# Events go out at low priority (events_emit_later): bounded wait.
ev() { kc -n "$ns" get events --field-selector reason=RollingOneAtATime -o jsonpath='{.items[*].message}'; }
has_ev() { [[ "$(ev)" == *"no node has room for a new pod beside the 2 old ones"* ]]; }
wait_until 40 has_ev
expect_code 0 $? "an Event RollingOneAtATime says why: $(ev)"
surge_back() { [ "$(strategy svc)" = 1/0 ]; }
wait_until 30 surge_back; expect_code 0 $? "then the Deployment adds before it removes again (maxSurge 1)"
kc -n "$ns" wait --for=condition=Ready kis/svc --timeout=30s >/dev/null
expect_code 0 $? "the InferenceService is Ready"

# A revision whose model never turns warm (the simulator fails its warm-up
# requests: the pod's annotation, put on while it waits unscheduled): one
# at a time, one r2 pod goes and the r3 pod never takes its place, so one
# replica serves, as any Deployment with maxUnavailable 1. The way back is
# to apply r2 again: it is a new template, whose extra pod fits nowhere
# either; after its 30 s the failing r3 pod's place is taken.
t1=$SECONDS
spec r3 | apply_isvc svc
r3_pod() { kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{range .items[*]}{.metadata.annotations.kinfer\.io/model-revision}{" "}{.metadata.name}{"\n"}{end}' | awk '$1 == "r3" { print $2; exit }'; }
has_r3() { [ -n "$(r3_pod)" ]; }
wait_until 20 has_r3
r3=$(r3_pod)
kc -n "$ns" annotate pod "$r3" sim.kinfer.io/fail-warmup=true >/dev/null
expect_code 0 $? "r3's pod $r3 waits unscheduled; its model will fail its warm-up"
wait_until 60 one_at_a_time; expect_code 0 $? "one at a time again at +$((SECONDS - t1)) s"
failed_warm() { [ "$(kc -n "$ns" get pod "$r3" -o jsonpath='{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}')" = WarmupFailed ]; }
wait_until 40 failed_warm; expect_code 0 $? "the r3 pod took an old pod's place and fails its warm-up"
sleep 5
expect_match "$(ready_count svc)" '^1$' "one r2 pod serves meanwhile (maxUnavailable 1)"
t2=$SECONDS
spec r2 | apply_isvc svc
wait_until 120 done_r2
expect_code 0 $? "applying r2 again rolls back: 2 pods of r2, Ready, at +$((SECONDS - t2)) s"
expect_match "$(kc -n "$ns" get pods -l kinfer.io/service=svc -o name | grep -c "$r3")" '^0$' "the failing r3 pod is gone"
wait_until 30 surge_back; expect_code 0 $? "and the surge is back"
stop_pid "$poll_pid"
min=$(ready_least "$tmp/ready.log")
samples=$(wc -l <"$tmp/ready.log")
expect_match "$min" '^[12]$' "at least one replica Ready at every moment of the rollout (least: $min, $samples samples)"

# A revision no node could ever take: its pods ask for a GPU product the
# cluster has not. Taking an old pod away would not help it, so nothing is:
# the 2 old pods stay Ready, the Deployment keeps its surge.
n_ev=$(kc -n "$ns" get events --field-selector reason=RollingOneAtATime -o name | wc -l)
spec r3 NVIDIA-H100-NOT-HERE | apply_isvc svc
wait_until 30 stuck; expect_code 0 $? "a revision for a product the cluster has not: Degraded Unschedulable"
sleep 40
expect_match "$(strategy svc)" '^1/0$' "40 s later the Deployment still adds before it removes"
expect_match "$(ready_count svc)" '^2$' "and both old pods are Ready"
expect_match "$(kc -n "$ns" get events --field-selector reason=RollingOneAtATime -o name | wc -l)" "^$n_ev\$" "no RollingOneAtATime Event for it"

# A scale-down in the same apply as a new template (2 GPUs a pod, 1
# replica: to make room for a bigger model). The scale-down waits for the
# rollout, as one during it does; the code before this drained a victim
# first (out of service) and then deferred, so that pod stayed out of
# service for the whole rollout, here for ever (the new pod fits nowhere
# beside the one left). First back to r2, settled.
spec r2 | apply_isvc svc
settled() { [ "$(cond svc Progressing reason)" = Complete ] && [ "$(ready_count svc)" = 2 ]; }
wait_until 60 settled; expect_code 0 $? "back on r2, the rollout complete"
gpu_spec "$id" r4 2 1 | apply_isvc svc
deferred() { [[ "$(cond svc Progressing message)" == *"the scale-down to 1 replicas waits for the rollout to finish"* ]]; }
wait_until 30 deferred; expect_code 0 $? "revision and scale-down at once: the scale-down waits for the rollout"
drained=$(seconds_short 20)
expect_match "$drained" '^0$' "both serving pods stay Ready meanwhile (seconds with fewer: $drained of 20)"

# A drain under way when a rollout starts: a scale-down 2 -> 1 whose victim
# still has a request in flight (a stream of 30 s), then a new revision. The
# scale-down waits for the rollout, so the victim goes back in service
# (DrainCancelled). The code before this kept it out of service until the
# rollout was over: here for ever, as the new revision fits nowhere.
spec r2 | apply_isvc svc
wait_until 60 settled; expect_code 0 $? "back on r2 with 2 replicas, the rollout complete"
before=$(live_pods svc)
for p in $before; do
	curl -s -o /dev/null --max-time 40 -X POST -d '{"stream":true,"max_tokens":300}' "http://$(j "pod/$p" '{.status.podIP}'):8000/v1/completions" &
	track_pid $!
done
sleep 1
gpu_spec "$id" r2 1 1 | apply_isvc svc
victim=
draining() { for p in $before; do [ "$(reason_of "$p")" = Draining ] && victim=$p; done; [ -n "$victim" ]; }
wait_until 10 draining; expect_code 0 $? "2 -> 1: pod $victim draining, a request in flight"
gpu_spec "$id" r3 1 1 NVIDIA-H100-NOT-HERE | apply_isvc svc
wait_until 30 deferred; expect_code 0 $? "a new revision mid-drain: the scale-down waits for the rollout"
back() { [ "$(reason_of "$victim")" = DrainCancelled ] && [ "$(ready_count svc)" = 2 ]; }
wait_until 10 back; expect_code 0 $? "the drain is called off: $victim back in service (DrainCancelled), 2 Ready"
expect_match "$(j "pod/$victim" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].message}')" 'waits for the rollout' "its condition says why"
expect_match "$(j "pod/$victim" '{.metadata.annotations.kinfer\.io/draining-since}')" '^$' "its drain annotation is gone"
short=$(seconds_short 15)
expect_match "$short" '^0$' "both pods serve while the rollout cannot go on (seconds with fewer: $short of 15)"
kept=0
for p in $before; do live_pods svc | grep -qx "$p" && kept=$((kept + 1)); done
expect_match "$kept" '^2$' "the 2 pods of before the drain are still there, none removed ($(live_pods svc | tr '\n' ' '))"
summary
