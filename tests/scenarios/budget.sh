#!/usr/bin/env bash
# Scenario: the pods' PodDisruptionBudget (reconcilers/budget.c). A node
# drain (kubectl drain, the cluster autoscaler, a cluster upgrade) evicts
# pods through the Eviction API; without a budget it takes every replica of
# a model at once. An InferenceService that may run 2 replicas or more gets
# a budget NAME (maxUnavailable 1, AlwaysAllow, owned by it): two
# evictions in a row, the first goes and the second is refused. One with
# a single replica or spec.drain.disruptionBudget false has none; a scale
# to 1 keeps it while the pod that leaves drains (the other one, the only
# one serving, cannot be evicted meanwhile). Kubernetes
# cannot evict a pod two budgets select (500), so kinfer's goes while a
# budget of the user's selects the pods and comes back when that one goes;
# a budget of the user's named like the service is never touched (one
# whose selector is past kinfer's bounds is taken to select every pod of
# the namespace, so kinfer steps aside). An edit
# of kinfer's budget is reverted; spec.drain.maxUnavailable sets it (2:
# two evictions in a row go; "50%"; 0 refused by the CRD); a restarted
# operator writes nothing.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin budget

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-requests 0
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

isvc() { # NAME REPLICAS [MORE-SPEC]
	apply_isvc "$1" <<YAML
  replicas: $2
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, requestTimeoutSeconds: 20}
  drain: {timeoutSeconds: 5${3:+, $3}}
YAML
}
has_pdb() { kc -n "$ns" get pdb "$1" >/dev/null 2>&1; }
no_pdb() { ! has_pdb "$1"; }
ours() { [ "$(j "pdb/$1" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" = "InferenceService/$1" ]; }
warm() { [ "$(j "kis/$1" '{.status.warmReplicas}')" = "$2" ]; }
pods() { # SERVICE: its pods not being deleted, on one line
	kc -n "$ns" get pods -l "kinfer.io/service=$1" --no-headers \
		-o custom-columns=N:.metadata.name,D:.metadata.deletionTimestamp | awk '$2 == "<none>" { printf "%s ", $1 }'
}
evict() { # POD: "evicted", or the API server's refusal
	printf '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"%s","namespace":"%s"}}' "$1" "$ns" |
		kc create --raw "/api/v1/namespaces/$ns/pods/$1/eviction" -f - 2>&1 >/dev/null && echo evicted
}
allowed() { [ "$(j "pdb/$1" '{.status.disruptionsAllowed}')" = "$2" ]; }

# --- made with the service, refused a second eviction ------------------------------

isvc svc 2
isvc keep 2
isvc one 1
isvc nobudget 2 'disruptionBudget: false'
if wait_until 20 has_pdb svc; then pass "svc (2 replicas): PodDisruptionBudget svc made"; else fail "no budget svc: $(kc -n "$ns" get pdb 2>&1)"; fi
expect_match "$(j pdb/svc '{.spec.maxUnavailable}/{.spec.unhealthyPodEvictionPolicy}/{.spec.selector.matchLabels}')" \
	'^1/AlwaysAllow/\{"kinfer.io/service":"svc"\}$' "svc's budget: maxUnavailable 1, AlwaysAllow, selector kinfer.io/service=svc"
if ours svc; then pass "svc's budget is owned by InferenceService svc"; else fail "owner: $(j pdb/svc '{.metadata.ownerReferences}')"; fi
expect_match "$(j kis/svc '{.spec.drain.disruptionBudget}')" '^true$' "spec.drain.disruptionBudget defaults to true"
if wait_until 60 warm svc 2; then pass "svc: 2 pods warm"; else fail "svc not warm: $(j kis/svc '{.status}')"; fi
if wait_until 20 allowed svc 1; then pass "svc's budget allows 1 disruption"; else fail "budget status: $(j pdb/svc '{.status}')"; fi
made() { [ "$(j kis/one '{.status.observedGeneration}')/$(j kis/nobudget '{.status.observedGeneration}')" = 1/1 ]; }
if wait_until 20 made; then pass "one and nobudget reconciled"; else fail "one, nobudget: $(kc -n "$ns" get kis 2>&1)"; fi
if wait_until 10 has_pdb keep; then pass "keep (2 replicas): budget keep made"; else fail "no budget keep"; fi
expect_match "$(kc -n "$ns" get pdb -o name | tr '\n' ' ')" '^poddisruptionbudget.policy/keep poddisruptionbudget.policy/svc $' "one (1 replica) and nobudget (disruptionBudget false) have none"

read -ra p <<<"$(pods svc)"
out=$(evict "${p[0]}"; echo "|"; evict "${p[1]}")
expect_match "$(tr -d '\n' <<<"$out")" "^evicted\|.*Cannot evict pod as it would violate the pod's disruption budget" \
	"svc: the first eviction goes through, the second is refused ($(tr -d '\n' <<<"$out" | cut -c1-120))"
read -ra p1 <<<"$(pods one)"
expect_match "$(evict "${p1[0]}")" '^evicted$' "one (no budget): its pod is evicted"

# --- an edit is reverted ------------------------------------------------------------

kc -n "$ns" patch pdb svc --type merge -p '{"spec":{"maxUnavailable":2}}' >/dev/null
back() { [ "$(j pdb/svc '{.spec.maxUnavailable}')" = 1 ]; }
sleep 1
if wait_until 10 back; then pass "an edit of svc's budget (maxUnavailable 2) is reverted"; else fail "maxUnavailable stays $(j pdb/svc '{.spec.maxUnavailable}')"; fi
expect_match "$(grep -c 'msg="disruption budget applied".*name=svc .*reverted a change' "$tmp/op.log")" '^1$' "the operator logs the revert once"

kc -n "$ns" delete pdb svc >/dev/null
ours_again() { has_pdb svc && ours svc; }
if wait_until 10 ours_again; then pass "svc's budget deleted by hand: made again"; else fail "no budget svc after its deletion"; fi

# --- a budget of the user's selecting the pods replaces kinfer's ---------------------

if wait_until 60 warm svc 2; then pass "svc: 2 pods warm again"; else fail "svc not warm: $(j kis/svc '{.status}')"; fi
user_budget() { # NAME N: a budget of the user's over app.kubernetes.io/name In
	# [svc, other and N-2 more names]
	local i vals="svc, other"
	for ((i = 2; i < $2; i++)); do vals+=", team-model-$i"; done
	kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: $1, namespace: $ns}
spec:
  minAvailable: 1
  selector:
    matchExpressions: [{key: app.kubernetes.io/name, operator: In, values: [$vals]}]
YAML
}
# A long list (100 names: a team's every service): read as it is (the
# pods' affinity keeps 64 values an expression; a budget 4,096 in all).
t0=$(date +%s%3N)
user_budget users 100
if wait_until 10 no_pdb svc; then pass "a budget of the user's selecting svc's pods: kinfer's goes"; else fail "kinfer's budget stays"; fi
echo "figure: kinfer's budget gone $(($(date +%s%3N) - t0)) ms after kubectl apply of the user's (polled every 0.2 s)"
sleep 1
if has_pdb keep; then pass "keep's budget stays (the user's does not select its pods)"; else fail "keep's budget was deleted"; fi
expect_match "$(grep -c 'msg="disruption budget removed".*name=svc .*PodDisruptionBudget users' "$tmp/op.log")" '^1$' "the operator logs why (budget users)"
replaced() { kc -n "$ns" get events --field-selector "involvedObject.name=svc,reason=DisruptionBudgetReplaced" -o jsonpath='{.items[*].message}' 2>/dev/null; }
has_replaced() { [ -n "$(replaced)" ]; }
wait_until 10 has_replaced
expect_match "$(replaced)" '^PodDisruptionBudget users selects the pods: kinfer removed its own budget svc' "an Event DisruptionBudgetReplaced on svc names the user's budget"
if wait_until 20 allowed users 1; then pass "the user's budget allows 1 disruption"; else fail "users: $(j pdb/users '{.status}')"; fi
read -ra p <<<"$(pods svc)"
out=$(evict "${p[0]}"; echo "|"; evict "${p[1]}")
expect_match "$(tr -d '\n' <<<"$out")" "^evicted\|.*Cannot evict pod as it would violate the pod's disruption budget" \
	"svc under the user's budget alone: the first eviction goes, the second is refused (not 'more than one budget')"
kc -n "$ns" delete pdb users >/dev/null
if wait_until 10 has_pdb svc; then pass "the user's budget deleted: kinfer's is back"; else fail "no budget svc"; fi

# Past what kinfer reads (5,000 values): taken to select every pod of the
# namespace, so kinfer steps aside for all its services there (two budgets
# over a pod would stop its evictions), and says why.
user_budget huge 5000
gone_both() { no_pdb svc && no_pdb keep; }
if wait_until 10 gone_both; then pass "a budget of 5,000 values: kinfer's budgets svc and keep go"; else fail "budgets: $(kc -n "$ns" get pdb -o name | tr '\n' ' ')"; fi
huge() { kc -n "$ns" get events --field-selector "involvedObject.name=keep,reason=DisruptionBudgetReplaced" -o jsonpath='{.items[*].message}' 2>/dev/null; }
has_huge() { [ -n "$(huge)" ]; }
wait_until 10 has_huge
expect_match "$(huge)" '^PodDisruptionBudget huge selects the pods \(its selector is larger than kinfer reads' "its Event says the selector is larger than kinfer reads"
kc -n "$ns" delete pdb huge >/dev/null
back_both() { has_pdb svc && has_pdb keep; }
if wait_until 10 back_both; then pass "that budget deleted: both are back"; else fail "budgets: $(kc -n "$ns" get pdb -o name | tr '\n' ' ')"; fi

# --- a budget of the user's named like the service ----------------------------------

kc -n "$ns" create pdb other --selector=team=x --max-unavailable=3 >/dev/null
isvc other 3
sleep 3
expect_match "$(j pdb/other '{.spec.maxUnavailable}/{.spec.selector.matchLabels}/{.metadata.ownerReferences}')" \
	'^3/\{"team":"x"\}/$' "the user's budget 'other' is not taken over"
kc -n "$ns" delete pdb other >/dev/null
mine() { has_pdb other && ours other; }
if wait_until 10 mine; then pass "once it is deleted, kinfer makes its own 'other'"; else fail "other: $(j pdb/other '{.metadata}')"; fi

# --- the spec turns it off, a scale to 1 too ----------------------------------------

kc -n "$ns" patch kis other --type merge -p '{"spec":{"drain":{"disruptionBudget":false}}}' >/dev/null
if wait_until 10 no_pdb other; then pass "disruptionBudget false: other's budget is deleted"; else fail "other's budget stays"; fi
# A scale-down to 1 first drains the pod that leaves (out of service, 5 s
# at least): meanwhile the other one is the only one serving, so the budget
# stays and a node drain cannot evict it too; the budget goes with the
# drain's end.
wait_until 60 warm svc 2 && wait_until 20 allowed svc 1 ||
	fail "svc before its scale-down: $(j kis/svc '{.status.warmReplicas}') warm, $(j pdb/svc '{.status}')"
kc -n "$ns" scale kis/svc --replicas=1 >/dev/null
draining() {
	kc -n "$ns" get pods -l kinfer.io/service=svc \
		-o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}{"\n"}{end}' |
		awk '$2 == "Draining" { print $1 }'
}
is_draining() { [ -n "$(draining)" ]; }
if wait_until 10 is_draining; then
	leaving=$(draining)
	read -ra p <<<"$(pods svc)"
	staying=
	for x in "${p[@]}"; do [ "$x" = "$leaving" ] || staying=$x; done
	if has_pdb svc && ours svc && wait_until 3 allowed svc 0; then
		pass "svc scaled to 1, $leaving draining: its budget stays and allows no disruption"
	else
		fail "svc's budget while $leaving drains: $(kc -n "$ns" get pdb svc -o jsonpath='{.status}' 2>&1)"
	fi
	expect_match "$(evict "$staying")" "Cannot evict pod as it would violate the pod's disruption budget" \
		"the pod that stays ($staying) is not evicted while the other drains"
else
	fail "no pod of svc draining: $(kc -n "$ns" get pods -l kinfer.io/service=svc -o wide 2>&1)"
fi
if wait_until 20 no_pdb svc; then pass "svc's drain over, 1 replica: its budget is deleted"; else fail "svc's budget stays"; fi
one_left() { [ "$(pods svc)" = "$staying " ]; }
if wait_until 10 one_left; then pass "the pod that stayed is the one left ($staying)"; else fail "svc's pods: $(pods svc)"; fi
kc -n "$ns" scale kis/svc --replicas=2 >/dev/null
if wait_until 10 has_pdb svc; then pass "svc scaled to 2: its budget is back"; else fail "no budget svc"; fi

# --- spec.drain.maxUnavailable -------------------------------------------------------

kc -n "$ns" patch kis keep --type merge -p '{"spec":{"drain":{"maxUnavailable":2}}}' >/dev/null
mu() { [ "$(j pdb/keep '{.spec.maxUnavailable}')" = "$1" ]; }
if wait_until 10 mu 2; then pass "keep's maxUnavailable 2: its budget follows"; else fail "keep's budget: $(j pdb/keep '{.spec}')"; fi
if wait_until 60 warm keep 2 && wait_until 20 allowed keep 2; then pass "keep's budget allows 2 disruptions"; else fail "keep: $(j pdb/keep '{.status}')"; fi
read -ra p <<<"$(pods keep)"
out=$(evict "${p[0]}"; echo "|"; evict "${p[1]}")
expect_match "$(tr -d '\n' <<<"$out")" '^evicted\|evicted$' "keep (maxUnavailable 2): two evictions in a row both go"
kc -n "$ns" patch kis keep --type merge -p '{"spec":{"drain":{"maxUnavailable":"50%"}}}' >/dev/null
if wait_until 10 mu 50%; then pass "keep's maxUnavailable 50%: its budget follows"; else fail "keep's budget: $(j pdb/keep '{.spec}')"; fi
out=$(kc -n "$ns" patch kis keep --type merge -p '{"spec":{"drain":{"maxUnavailable":0}}}' 2>&1)
expect_match "$out" 'spec.drain.maxUnavailable must be 1 or more, or a percentage from 1% to 100%' "maxUnavailable 0 is refused, naming the field"

# --- deleted with its InferenceService (owner reference) ----------------------------

kc -n "$ns" delete kis keep --wait=false >/dev/null
# The collector learns a new CRD's kind up to 30 s after it appears (on a
# fresh cluster this scenario's install is that new): 45 s.
if wait_until 45 no_pdb keep; then pass "InferenceService keep deleted: the garbage collector takes its budget"; else fail "budget keep stays"; fi

# --- a restarted operator writes nothing --------------------------------------------

sleep 2
stop_operators
start_operator "$tmp/op2.log" --leader-elect=false --watch-namespace "$ns" || exit 1
sleep 6
expect_match "$(grep -c 'msg="disruption budget' "$tmp/op2.log")" '^0$' "a restarted operator neither applies nor deletes a budget"

summary
