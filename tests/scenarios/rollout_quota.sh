#!/usr/bin/env bash
# Scenario: a rollout in a namespace whose ResourceQuota is used up (a team
# given 2 GPUs, its service's 2 replicas holding both). The nodes have room
# (a KWOK node of this scenario's own with 8 GPUs); the quota refuses the
# rolling update's extra pod: the ReplicaSet cannot create it, the
# Deployment's ReplicaFailure says "exceeded quota", and the rollout would
# wait for ever (the code before this: Degraded ReplicaFailure, never
# rolled). kinfer reads the refusal (what the pod asked, what is used, the
# limit), sees one old pod's share would let it in, and after 30 s goes one
# pod at a time (maxSurge 0, maxUnavailable 1, an Event naming the quota);
# at least one replica Ready throughout; the surge back after. A revision
# asking for more than one old pod gives back (2 GPUs where each held 1)
# is not helped that way: both old pods stay.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin rquota
id=$ns
gpu_node "$id" 8
expect_code 0 $? "a node with 8 GPUs of this scenario's own"
install_crd
kc create ns "$ns" >/dev/null
cat <<YAML | kc -n "$ns" apply -f - >/dev/null
apiVersion: v1
kind: ResourceQuota
metadata: {name: team-gpus}
spec: {hard: {requests.nvidia.com/gpu: "2"}}
YAML
expect_code 0 $? "the namespace's quota: 2 GPUs"
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 20ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
# spec REVISION [GPUS]: 2 replicas on the node.
spec() { gpu_spec "$id" "$1" "${2:-1}"; }
spec r1 | apply_isvc svc
warm2() { [ "$(j kis/svc '{.status.warmReplicas}')" = 2 ]; }
wait_until 90 warm2; expect_code 0 $? "2 replicas warm, the quota's 2 GPUs used"
expect_match "$(strategy svc)" '^1/0$' "the Deployment adds before it removes (maxSurge 1, maxUnavailable 0)"

poll_ready svc "$tmp/ready.log" 300 0.3 &
poll_pid=$!
track_pid "$poll_pid"

t0=$SECONDS
spec r2 | apply_isvc svc
refused() { [ "$(cond svc Degraded reason)" = ReplicaFailure ] && [[ "$(cond svc Degraded message)" == *"exceeded quota: team-gpus"* ]]; }
wait_until 30 refused; expect_code 0 $? "the quota refuses r2's extra pod: Degraded ReplicaFailure ($(cond svc Degraded message))"
one_at_a_time() { [ "$(strategy svc)" = 0/1 ]; }
wait_until 60 one_at_a_time
expect_code 0 $? "after it waited, one pod at a time (maxSurge 0, maxUnavailable 1) at +$((SECONDS - t0)) s"
t_switch=$((SECONDS - t0))
done_r2() { rolled svc r2 2; }
wait_until 180 done_r2
expect_code 0 $? "the rollout completes within the quota: 2 pods of r2, Ready, at +$((SECONDS - t0)) s"
t_done=$((SECONDS - t0))
ev() { kc -n "$ns" get events --field-selector reason=RollingOneAtATime -o jsonpath='{.items[*].message}'; }
has_ev() { [[ "$(ev)" == *"the namespace's ResourceQuota team-gpus has no room for a new pod beside the 2 old ones"* ]]; }
wait_until 40 has_ev
expect_code 0 $? "an Event RollingOneAtATime names the quota: $(ev)"
surge_back() { [ "$(strategy svc)" = 1/0 ]; }
wait_until 30 surge_back; expect_code 0 $? "then the Deployment adds before it removes again"
kc -n "$ns" wait --for=condition=Ready kis/svc --timeout=30s >/dev/null
expect_code 0 $? "the InferenceService is Ready"
stop_pid "$poll_pid"
min=$(ready_least "$tmp/ready.log")
samples=$(wc -l <"$tmp/ready.log")
expect_match "$min" '^[12]$' "at least one replica Ready at every poll (least: $min, $samples polls)"

# A revision whose pod asks for 2 GPUs: one old pod gives back 1, so the
# quota would still refuse it; taking an old pod away would only cost a
# replica. Nothing is done: both old pods stay Ready, the surge stays.
n_ev=$(kc -n "$ns" get events --field-selector reason=RollingOneAtATime -o name | wc -l)
spec r3 2 | apply_isvc svc
r3_refused() { refused && [[ "$(cond svc Degraded message)" == *"requested: requests.nvidia.com/gpu=2"* ]]; }
wait_until 30 r3_refused; expect_code 0 $? "r3 (2 GPUs a pod) is refused by the quota too"
sleep 40
expect_match "$(strategy svc)" '^1/0$' "40 s later the Deployment still adds before it removes"
expect_match "$(ready_count svc)" '^2$' "and both r2 pods are Ready"
expect_match "$(kc -n "$ns" get events --field-selector reason=RollingOneAtATime -o name | wc -l)" "^$n_ev\$" "no RollingOneAtATime Event for it"
echo "figure: quota-bound rollout: one at a time at +$t_switch s, done at +$t_done s, least Ready $min"
summary
