#!/usr/bin/env bash
# Scenario (issue 15, goal 4): the write budget, and what must still be
# written. Twenty InferenceServices applied at once: each gets its
# Deployment and its Service applied once (kinfer's own request count),
# one DeploymentCreated Event, its observedGeneration, and a bounded number
# of status patches. Then what kinfer must not skip while it trusts its own
# writes: a Service edited by hand is put back, a deleted Service and a
# deleted Deployment are made again, two spec changes in a row end with
# the last one rolled out and observed; an operator killed in the middle of
# a burst and started again finishes it, never two DeploymentCreated Events
# for one object; one stopped by SIGTERM while its Events wait at low
# priority sends them before it ends; objects edited while no operator ran
# are put back at the next start, and only they are written.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin writes

install_crd
kc create ns "$ns" >/dev/null
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
port=$started_port
n=20

# verb V: kinfer's API requests of verb V so far (any code).
verb() {
	curl -s --max-time 2 "http://127.0.0.1:$port/metrics" |
		awk -v v="$1" 'index($0, "kinfer_api_requests_total{verb=\"" v "\"") == 1 { s += $2 } END { print s + 0 }'
}
# burst PREFIX: N InferenceServices (no replicas: no pods, so the status
# settles at once) in one kubectl apply.
burst() {
	local i
	for i in $(seq -w 1 "$n"); do
		printf -- '---\napiVersion: kinfer.io/v1alpha1\nkind: InferenceService\n'
		printf 'metadata: {name: %s%s, namespace: %s}\n' "$1" "$i" "$ns"
		printf 'spec:\n  replicas: 0\n  model: {name: m, uri: "s3://m/%s"}\n' "$i"
		printf '  resources: {gpu: {count: 0}, cpu: 100m, memory: 256Mi}\n'
	done >"$tmp/$1.yaml"
	kc apply -f "$tmp/$1.yaml" >/dev/null
}
# all_made PREFIX: every one of the burst observed, with its Deployment and
# Service.
all_made() {
	[ "$(kc -n "$ns" get kis -o jsonpath='{range .items[*]}{.metadata.name} {.status.observedGeneration}{"\n"}{end}' |
		grep -c "^$1[0-9]* 1$")" -eq "$n" ] &&
		[ "$(kc -n "$ns" get deploy -o name | grep -c "/$1[0-9]*$")" -eq "$n" ] &&
		[ "$(kc -n "$ns" get svc -o name | grep -c "/$1[0-9]*$")" -eq "$n" ]
}
# created PREFIX: the names DeploymentCreated Events were recorded for.
created() {
	kc -n "$ns" get events --field-selector reason=DeploymentCreated \
		-o jsonpath='{range .items[*]}{.involvedObject.name}{"\n"}{end}' | grep "^$1" | sort
}

a0=$(verb apply) p0=$(verb patch)
burst w
if wait_until 60 all_made w; then pass "$n at once: each observed, with its Deployment and Service"; else fail "burst: $(kc -n "$ns" get kis,deploy,svc --no-headers | wc -l) objects"; fi
sleep 3
a1=$(verb apply) p1=$(verb patch)
expect_match "$((a1 - a0))" "^$((2 * n))\$" "each Deployment and Service applied once ($((a1 - a0)) applies for $n)"
if [ $((p1 - p0)) -ge "$n" ] && [ $((p1 - p0)) -le $((2 * n)) ]; then
	pass "status patches: $((p1 - p0)) for $n new objects (one each, two when the Deployment's controller lags)"
else
	fail "status patches: $((p1 - p0)) for $n"
fi
has_events() { [ "$(created w | wc -l)" -ge "$n" ]; }
wait_until 10 has_events
expect_match "$(created w | wc -l) $(created w | uniq -d | wc -l)" "^$n 0\$" "one DeploymentCreated Event per object"
expect_match "$(cond w01 Ready reason)/$(cond w01 Ready observedGeneration)" '^ScaledToZero/1$' "the status says what it said before (Ready ScaledToZero, observedGeneration 1)"

# A Service edited by hand is put back; a deleted one is made again.
kc -n "$ns" patch svc w01 --type=merge -p '{"spec":{"selector":{"kinfer.io/service":"other"}}}' >/dev/null
selector_back() { [ "$(j svc/w01 '{.spec.selector.kinfer\.io/service}')" = w01 ]; }
if wait_until 20 selector_back; then pass "an edited Service selector is put back"; else fail "selector stays $(j svc/w01 '{.spec.selector}')"; fi
uid=$(j svc/w02 '{.metadata.uid}')
kc -n "$ns" delete svc w02 --wait=true >/dev/null
svc_again() { local u; u=$(j svc/w02 '{.metadata.uid}'); [ -n "$u" ] && [ "$u" != "$uid" ]; }
if wait_until 20 svc_again; then pass "a deleted Service is made again"; else fail "svc/w02 not back"; fi
uid=$(j deploy/w03 '{.metadata.uid}')
kc -n "$ns" delete deploy w03 --wait=true >/dev/null
dep_again() { local u; u=$(j deploy/w03 '{.metadata.uid}'); [ -n "$u" ] && [ "$u" != "$uid" ]; }
if wait_until 20 dep_again; then pass "a deleted Deployment is made again"; else fail "deploy/w03 not back"; fi

# Two spec changes in a row, well inside the status window: the last one
# is rolled out and observed.
kc -n "$ns" patch kis w04 --type=merge -p '{"spec":{"model":{"revision":"v2"}}}' >/dev/null
kc -n "$ns" patch kis w04 --type=merge -p '{"spec":{"model":{"revision":"v3"}}}' >/dev/null
last_one() {
	[ "$(j kis/w04 '{.status.observedGeneration}')" = 3 ] &&
		[ "$(cond w04 Ready observedGeneration)" = 3 ] &&
		[ "$(j deploy/w04 '{.spec.template.metadata.annotations.kinfer\.io/model-revision}')" = v3 ]
}
if wait_until 20 last_one; then pass "two spec changes in a row: revision v3 rolled out, observedGeneration 3"; else fail "w04: gen $(j kis/w04 '{.status.observedGeneration}') rev $(j deploy/w04 '{.spec.template.metadata.annotations.kinfer\.io/model-revision}')"; fi

# The operator killed in the middle of a burst, then started again.
burst r
some() { [ "$(kc -n "$ns" get deploy -o name | grep -c '/r[0-9]*$')" -ge 1 ]; }
wait_until 30 some
stop_operators
start_operator "$tmp/op2.log" --leader-elect=false --watch-namespace "$ns" || exit 1
port=$started_port
if wait_until 60 all_made r; then pass "killed mid-burst and restarted: all $n observed, with their Deployments and Services"; else fail "after restart: $(kc -n "$ns" get kis -o jsonpath='{.items[*].status.observedGeneration}')"; fi
sleep 2
expect_match "$(created r | uniq -d | tr '\n' ' ')" '^$' "never two DeploymentCreated Events for one object across the restart"

# Stopped (SIGTERM) in the middle of a burst at a tight client budget: the
# Events were waiting at low priority for the limiter; they go out before
# the process ends, so every Deployment made has its one DeploymentCreated
# Event, also after the restart that finishes the burst.
stop_operators
start_operator "$tmp/op3.log" --leader-elect=false --watch-namespace "$ns" --kube-api-qps 5 --kube-api-burst 10 || exit 1
term_pid=$started_pid
burst t
some_t() { [ "$(kc -n "$ns" get deploy -o name | grep -c '/t[0-9]*$')" -ge 3 ]; }
wait_until 30 some_t
kill -TERM "$term_pid"
wait "$term_pid"
expect_code 0 $? "the operator stops on SIGTERM with exit code 0"
op_pids=()
made=$(kc -n "$ns" get deploy -o name | grep -c '/t[0-9]*$')
evs=$(created t | wc -l)
expect_match "$evs" "^$made\$" "at the stop: $made Deployments made, $evs DeploymentCreated Events"
expect_match "$(grep -c 'events not sent at stop' "$tmp/op3.log")" '^0$' "no Event left unsent at the stop"
start_operator "$tmp/op4.log" --leader-elect=false --watch-namespace "$ns" || exit 1
if wait_until 60 all_made t; then pass "restarted: all $n observed"; else fail "after the SIGTERM restart: $(kc -n "$ns" get kis -o jsonpath='{.items[*].status.observedGeneration}')"; fi
all_t_events() { [ "$(created t | wc -l)" -ge "$n" ]; }
wait_until 20 all_t_events
expect_match "$(created t | wc -l) $(created t | uniq -d | wc -l)" "^$n 0\$" "one DeploymentCreated Event per object across the SIGTERM and restart"

# Edited while no operator ran (an operator upgrade's window): a Service's
# selector, a Deployment's image, another's replicas. The next start has
# no memory of its last writes; it finds the three by their managedFields
# (another field manager owns spec fields) and applies them again, and
# trusts the other objects (no write).
port=$started_port
stop_operators
image=$(j deploy/w06 '{.spec.template.spec.containers[0].image}')
container=$(j deploy/w06 '{.spec.template.spec.containers[0].name}')
kc -n "$ns" patch svc w05 --type=merge -p '{"spec":{"selector":{"kinfer.io/service":"other"}}}' >/dev/null
kc -n "$ns" set image deploy/w06 "$container=example.invalid/by-hand:1" >/dev/null
kc -n "$ns" scale deploy/w07 --replicas=2 >/dev/null
gen08=$(j deploy/w08 '{.metadata.generation}') rv08=$(j svc/w08 '{.metadata.resourceVersion}')
start_operator "$tmp/op5.log" --leader-elect=false --watch-namespace "$ns" || exit 1
port=$started_port
put_back() {
	[ "$(j svc/w05 '{.spec.selector.kinfer\.io/service}')" = w05 ] &&
		[ "$(j deploy/w06 '{.spec.template.spec.containers[0].image}')" = "$image" ] &&
		[ "$(j deploy/w07 '{.spec.replicas}')" = 0 ]
}
if wait_until 20 put_back; then pass "edited while the operator was down: selector, image and replicas put back after the start"; else fail "after the start: w05 selector $(j svc/w05 '{.spec.selector}'), w06 image $(j deploy/w06 '{.spec.template.spec.containers[0].image}'), w07 replicas $(j deploy/w07 '{.spec.replicas}')"; fi
sleep 3
applies=$(verb apply)
expect_match "$applies" '^3$' "only the three edited objects applied again after the start (of $((3 * n)) Deployments and $((3 * n)) Services)"
[ "$applies" = 3 ] || grep -v 'level=debug' "$tmp/op5.log" | tail -40 >&2
expect_match "$(j deploy/w08 '{.metadata.generation}') $(j svc/w08 '{.metadata.resourceVersion}')" "^$gen08 $rv08\$" "an object nobody edited is left alone"
expect_match "$(kc -n "$ns" get deploy/w06 deploy/w07 svc/w05 --show-managed-fields -o jsonpath='{.items[*].metadata.managedFields[*].manager}')" '^(kinfer-operator|kube-controller-manager| )+$' "no other field manager left on them (kubectl's edits taken back)"
expect_match "$(grep -c 'level=error' "$tmp/op.log" "$tmp/op2.log" "$tmp/op3.log" "$tmp/op4.log" "$tmp/op5.log" | awk -F: '{ s += $2 } END { print s }')" '^0$' "no errors in the operator logs"
summary
