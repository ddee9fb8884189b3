#!/usr/bin/env bash
# A node drain on the real node (kubectl drain: cordon, then the Eviction
# API) under load through the ClusterIP. An InferenceService with 2
# replicas has kinfer's PodDisruptionBudget: the drain evicts one pod, and
# the other is refused until its replacement is ready (here never: the
# node is cordoned, so the drain gives up at its timeout) and keeps
# serving; no request fails. The same service with
# spec.drain.disruptionBudget false, the baseline: the drain evicts both
# pods at once and the service has no endpoint until the node is back.
. "$(dirname "$0")/node_lib.sh"
begin node-eviction
dir=$tmp
node=kinfer-node-0
at_exit stop_loads
at_exit "kc uncordon $node >/dev/null 2>&1"
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
kis "$ns" ev 2 r1 5 50
kc -n "$ns" wait --for=condition=Ready kis/ev --timeout=150s >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=ev 2
expect_code 0 $? "two warm pods"
has_pdb() { kc -n "$ns" get pdb ev >/dev/null 2>&1; }
wait_until 20 has_pdb
expect_code 0 $? "kinfer made the PodDisruptionBudget ev"
allowed() { [ "$(kc -n "$ns" get pdb ev -o jsonpath='{.status.disruptionsAllowed}')" = 1 ]; }
wait_until 30 allowed
expect_code 0 $? "the disruption controller allows 1 disruption"
kip=$(cluster_ip "$ns" ev)

# drain OUT: kubectl drain of the service's pods on the node (the node
# cordoned), giving up after 20 s; its exit code, its output in OUT.
drain() {
	kc drain "$node" --pod-selector=kinfer.io/service=ev --delete-emptydir-data --timeout=20s >"$1" 2>&1
}
gone() { # the service's pods evicted (being deleted or gone) of BEFORE
	local p n=0 now
	now=$(kc -n "$ns" get pods -l kinfer.io/service=ev -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.deletionTimestamp}{"\n"}{end}')
	for p in $1; do
		grep -q "^$p \$" <<<"$now" || n=$((n + 1))
	done
	echo "$n"
}

# --- with kinfer's budget -----------------------------------------------------------

before=$(kc -n "$ns" get pods -l kinfer.io/service=ev -o jsonpath='{.items[*].metadata.name}')
load_start "$dir/load" "$kip:8000" 26 20; lp=$started_load
sleep 2
drain "$dir/drain1"; rc=$?
[ "$rc" -ne 0 ]
expect_code 0 $? "kubectl drain gives up at its timeout (exit $rc): it may not take the last replica"
expect_match "$(cat "$dir/drain1")" "Cannot evict pod as it would violate the pod's disruption budget" \
	"the drain was refused by the budget ($(grep -m1 -o "error when evicting.*" "$dir/drain1" | cut -c1-100))"
expect_match "$(gone "$before")" '^1$' "one of the two pods was evicted"
wait_until 10 pods_ready "$ns" kinfer.io/service=ev 1
expect_code 0 $? "the other one is still Ready"
load_wait "$lp"; lg_pids=()
lf=$(summary_of "$dir/load" failed) ls=$(summary_of "$dir/load" sent)
expect_match "${ls:-0}" '^[1-9][0-9]*$' "load ran through the ClusterIP during the drain ($ls requests)"
expect_match "${lf:-x}" '^0$' "0 failed requests (of ${ls:-?})" ||
	echo "the failed ones: $(load_failures "$dir/load")"
echo "figure: kubectl drain with kinfer's budget: 1 of 2 pods evicted, $lf of $ls requests failed"

kc uncordon "$node" >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=ev 2
expect_code 0 $? "uncordoned: the replacement is warm, two pods again"

# --- the baseline: no budget ------------------------------------------------------

kc -n "$ns" patch kis ev --type merge -p '{"spec":{"drain":{"disruptionBudget":false}}}' >/dev/null
no_pdb() { ! has_pdb; }
wait_until 20 no_pdb
expect_code 0 $? "disruptionBudget false: kinfer deletes its budget"
before=$(kc -n "$ns" get pods -l kinfer.io/service=ev -o jsonpath='{.items[*].metadata.name}')
load_start "$dir/load2" "$kip:8000" 14 20; lp=$started_load
sleep 2
drain "$dir/drain2"; rc=$?
expect_code 0 "$rc" "without the budget kubectl drain succeeds"
expect_match "$(gone "$before")" '^2$' "both pods were evicted at once"
load_wait "$lp"; lg_pids=()
lf2=$(summary_of "$dir/load2" failed) ls2=$(summary_of "$dir/load2" sent)
expect_match "${lf2:-0}" '^[1-9][0-9]*$' "the baseline loses requests: ${lf2:-?} of ${ls2:-?} failed (the outage the budget prevents)"
echo "figure: kubectl drain without a budget: 2 of 2 pods evicted, ${lf2:-?} of ${ls2:-?} requests failed"
kc uncordon "$node" >/dev/null
summary
