#!/usr/bin/env bash
# Changes that come close together, as in production, under load on the
# real node: revisions one after another (a new one before the last has
# rolled), a revision with a scale, scales, the leader operator pod deleted,
# a pod deleted, a pod evicted (the budget may refuse it), the kubelet
# restarted; 0-7 s apart, in an order drawn from CHURN_SEED (fixed by
# default, so a failure can be run again; CHURN_SEED=random draws one, the
# seed is printed), CHURN_OPS of them (15). Asserted: every request through
# the ClusterIP answered, the service settles on the last spec (its
# replicas, all of its revision, warm and Ready), no pod got a request
# before its warm-up, and no operator pod restarted (a crash). Replicas
# stay 2 or 3: one replica has no budget and no second pod to serve while
# its only one is replaced (README says so).
. "$(dirname "$0")/node_lib.sh"
begin node-churn
dir=$tmp
at_exit stop_loads
seed=${CHURN_SEED:-14642}
[ "$seed" = random ] && seed=$RANDOM
RANDOM=$seed
echo "seed $seed"
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
# Each kinfer pod and its restarts now: the churn's are counted against
# these (an earlier scenario on the same install, node_scale_to_zero, kills
# an activator on purpose: a run in another order counted that one).
restarts_of() { kc -n kinfer-system get pods -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.containerStatuses[*].restartCount}{"\n"}{end}'; }
restarts_of >"$dir/restarts.before"
kc create namespace "$ns" >/dev/null
rev=1 reps=2
kis "$ns" ch $reps r$rev 20 300 2>/dev/null
kc -n "$ns" wait --for=condition=Ready kis/ch --timeout=150s >/dev/null
wait_until 120 pods_ready "$ns" kinfer.io/service=ch 2; expect_code 0 $? "two warm pods"
kip=$(cluster_ip "$ns" ch)
wait_until 30 routed "$kip" 8000
load_start "$dir/load" "$kip:8000" 600 10; lp=$started_load
sleep 3
log() { echo "$(date +%T.%3N) $*"; }
t_churn=$SECONDS ops_done=0
for _ in $(seq 1 "${CHURN_OPS:-15}"); do
	ops_done=$((ops_done + 1))
	op=$((RANDOM % 7))
	case $op in
	0) reps=$((2 + RANDOM % 2)); log "scale to $reps"; kc -n "$ns" scale kis/ch --replicas=$reps >/dev/null ;;
	1) rev=$((rev + 1)); log "revision r$rev"; kis "$ns" ch $reps r$rev 20 300 2>/dev/null ;;
	2) rev=$((rev + 1)); reps=$((2 + RANDOM % 2)); log "revision r$rev and scale $reps"; kis "$ns" ch $reps r$rev 20 300 2>/dev/null ;;
	3) l=$(lease); log "delete leader ${l%_*}"; kc -n kinfer-system delete pod "${l%_*}" --wait=false >/dev/null ;;
	4) p=$(kc -n "$ns" get pods -l kinfer.io/service=ch -o jsonpath='{.items[0].metadata.name}'); log "delete pod $p"; kc -n "$ns" delete pod "$p" --wait=false >/dev/null ;;
	5) log "kubelet restart"; bash "$src/tests/cluster/restart.sh" "$KINFER_TEST_CLUSTER" kubelet --down-for 3 >>"$dir/restart.log" 2>&1 ;;
	6) p=$(kc -n "$ns" get pods -l kinfer.io/service=ch -o jsonpath='{.items[0].metadata.name}'); log "evict pod $p"
	   kc -n "$ns" create --raw "/api/v1/namespaces/$ns/pods/$p/eviction" -f - <<<"{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"$p\",\"namespace\":\"$ns\"}}" >/dev/null 2>&1 || log "  eviction refused" ;;
	esac
	sleep $((RANDOM % 8))
done
churn_s=$((SECONDS - t_churn)) t_settle=$SECONDS
final() {
	[ "$(kc -n "$ns" get pods -l kinfer.io/service=ch -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{" "}{.metadata.annotations.kinfer\.io/model-revision}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
		grep -c "^ r$rev True$")" = $reps ] && pods_total "$ns" kinfer.io/service=ch $reps
}
wait_until 240 final; expect_code 0 $? "settles on $reps pods of r$rev, warm and Ready"
settle_s=$((SECONDS - t_settle))
kc -n "$ns" wait --for=condition=Ready kis/ch --timeout=30s >/dev/null
expect_code 0 $? "the InferenceService is Ready"
sleep 3
kill -TERM "$lp" 2>/dev/null; load_wait "$lp"; lg_pids=()
lf=$(summary_of "$dir/load" failed) ls=$(summary_of "$dir/load" sent)
expect_match "${ls:-0}" '^[1-9][0-9]*$' "load ran through the ClusterIP ($ls requests)"
expect_match "${lf:-x}" '^0$' "0 failed requests through it all (of ${ls:-?})" ||
	echo "the failed ones: $(load_failures "$dir/load")"
for p in $(kc -n "$ns" get pods -l kinfer.io/service=ch -o jsonpath='{.items[*].metadata.name}'); do
	ip=$(kc -n "$ns" get pod "$p" -o jsonpath='{.status.podIP}')
	b=$(sim_metric "$ip" kinfer_sim_traffic_before_warm_total)
	expect_match "${b:-x}" '^0$' "pod $p: no request before its warm-up"
done
restarts=$(restarts_of | awk 'NR == FNR { for (i = 2; i <= NF; i++) b[$1] += $i; next } { for (i = 2; i <= NF; i++) s += $i; s -= b[$1] } END { print s + 0 }' "$dir/restarts.before" -)
expect_match "$restarts" '^0$' "no kinfer pod restarted (crashed) meanwhile"
echo "figure: churn (seed $seed): $ops_done changes in $churn_s s, settled $settle_s s after the last; ${lf:-?} failed of ${ls:-?}"
summary
