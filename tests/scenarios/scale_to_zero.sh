#!/usr/bin/env bash
# Scenario (issue 16, the operator's side of scale to zero): an
# InferenceService with minReplicas 0 and spec.scaling.scaleToZero, pods
# answered by the model simulator (vLLM's metrics), no traffic.
#
#   idle        -> drained to 0 replicas: Ready True with reason
#                  ScaledToZero (the Reason column of kubectl get kis),
#                  Event ScaledToZero, status.scaling.scaledToZeroAt;
#   an activation annotation older than the zero time -> nothing;
#   the operator restarted while at zero -> stays at zero (never 1), also
#                  with the status's zero time an hour ahead (a leader
#                  whose clock ran ahead wrote it), which the activation
#                  next wakes all the same, from an activator whose clock
#                  runs a minute behind;
#   the activation annotation as the activator writes it -> the
#                  Deployment's replicas go to 1 at once (the time from the
#                  patch to the write is printed; the evaluation interval
#                  is 20 s, so a wake that waited for it would show), then
#                  the pod warms: Event ScaledFromZero with the cold start,
#                  Ready AllReplicasReady.
#   another's slice NAME-kinfer -> ResourceExists, made once theirs goes;
#   deleted and made again at once, the first one's NAME-private and
#                  NAME-kinfer still there -> WaitingForCleanup (not
#                  ResourceExists), its own once they are gone;
#   a user's NAME-private held by a finalizer and deleted -> WaitingForCleanup,
#                  nothing written into it, its own once it is gone.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin stz
rcond() { cond svc Ready "$1"; }
deploy_replicas() { j deploy/svc '{.spec.replicas}'; }
events() { kc -n "$ns" get events --field-selector "involvedObject.name=svc,reason=$1" \
	-o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null; }
now_ms() { date +%s%3N; }
iso_ms() { date -u -d "@$(($1 / 1000)).$(printf %03d $(($1 % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ; }

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 2s --cold-requests 0 --latency-ms 50ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

apply_isvc svc <<YAML
  model: {name: m, uri: s3://m}
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1}
  drain: {timeoutSeconds: 10}
  scaling:
    minReplicas: 0
    maxReplicas: 2
    evaluationIntervalSeconds: 20
    metrics: [{type: QueueDepth, target: 5}]
    scaleToZero: {idleSeconds: 3}
YAML
# A new service that scales to zero starts with one replica.
warm() { [ "$(j kis/svc '{.status.warmReplicas}')" = "$1" ]; }
if wait_until 60 warm 1; then pass "a new service starts with 1 replica, warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
first=$(kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{.items[0].status.podIP}:{.items[0].spec.containers[0].ports[0].containerPort}')

# Its EndpointSlice svc-kinfer (the public Service's endpoints) is watched:
# deleted, or edited by hand, it is written again, as it was.
slice() { kc -n "$ns" get endpointslice svc-kinfer -o jsonpath='{.metadata.labels.kinfer\.io/route} {.metadata.ownerReferences[0].name} [{range .endpoints[*]}{.addresses[0]} {end}]' 2>/dev/null; }
has_slice() { [ -n "$(slice)" ]; }
wait_until 20 has_slice
before=$(slice)
expect_match "$before" '^(pods|activator) svc \[' "EndpointSlice svc-kinfer, owned by the InferenceService ($before)"
as_before() { [ "$(slice)" = "$before" ]; }
kc -n "$ns" delete endpointslice svc-kinfer >/dev/null
t=$SECONDS
if wait_until 15 as_before; then pass "svc-kinfer deleted by hand: written again, as it was, in $((SECONDS - t)) s"; else fail "after the delete: '$(slice)', before '$before'"; fi
kc -n "$ns" patch endpointslice svc-kinfer --type=merge -p '{"endpoints":[{"addresses":["198.18.255.254"],"conditions":{"ready":true}}]}' >/dev/null
expect_code 0 $? "svc-kinfer's endpoints edited by hand"
t=$SECONDS
if wait_until 15 as_before; then pass "the edit is undone in $((SECONDS - t)) s"; else fail "after the edit: '$(slice)', before '$before'"; fi
again=$(grep -c 'reason="written again' "$tmp/op.log")
expect_match "$again" '^[2-9]$' "the operator's log says it wrote the slice again ($again times)"

# Idle: no request at all -> 0, through the drain.
at() { [ "$(deploy_replicas)" = "$1" ]; }
if wait_until 90 at 0; then pass "idle: the Deployment is drained to 0"; else fail "Deployment at $(deploy_replicas): $(tail -5 "$tmp/op.log")"; fi
expect_match "$(rcond status) $(rcond reason)" '^True ScaledToZero$' "Ready True, reason ScaledToZero"
plain() { kc -n "$ns" get kis svc 2>&1; }
plain_zero() { [[ "$(plain)" =~ svc\ +m\ +0\ +0\ +0\ +0\ +True\ +ScaledToZero\  ]]; }
if wait_until 20 plain_zero; then pass "kubectl get kis shows 0 replicas, True, ScaledToZero"; else fail "kubectl get kis: $(plain)"; fi
expect_match "$(events ScaledToZero)" 'Scaling to zero: no request and no queued work for 3 s' "Event ScaledToZero"
expect_match "$(events Drained)" '.' "the last replica left through the drain (Event Drained)"
zero_at=$(j kis/svc '{.status.scaling.scaledToZeroAt}')
expect_match "$zero_at" '^[0-9-]+T[0-9:]+\.[0-9]{3}Z$' "status.scaling.scaledToZeroAt in ms ($zero_at)"
gone() { [ -z "$(kc -n "$ns" get pods -l kinfer.io/service=svc -o name 2>/dev/null)" ]; }
wait_until 30 gone || fail "pods still there: $(kc -n "$ns" get pods -o name)"
# The simulator's server of the drained pod, once stopped (after its preStop
# pause), refuses connections: kwok gives its IP to the next pod, which must
# be able to listen there (a listening socket left open took the woken
# pod's connections into a backlog nobody read: never warm).
stopped() { grep -q "stopped serving pod.*pod=$ns/svc-" "$tmp/sim.log"; }
wait_until 30 stopped
curl -s -o /dev/null --max-time 2 "http://$first/metrics"
expect_code 7 $? "the drained pod's address $first refuses connections once its server stopped"

# An activation older than the zero time (the one a restart reads again):
# nothing happens.
zero_ms=$(date -d "$zero_at" +%s%3N)
kc -n "$ns" annotate kis svc --overwrite "kinfer.io/activation-requested=$(iso_ms $((zero_ms - 60000)))" >/dev/null
stayed=yes
for _ in $(seq 1 15); do [ "$(deploy_replicas)" = 0 ] || stayed=no; sleep 0.2; done
[ "$stayed" = yes ] && pass "an activation older than the zero time does nothing" || fail "woken by an old activation: $(deploy_replicas)"

# The operator restarts while at zero: it stays at zero. Its slice, edited
# while no operator ran, is put back after the start.
before=$(slice)
stop_operators
op_pids=()
kc -n "$ns" patch endpointslice svc-kinfer --type=merge -p '{"endpoints":[{"addresses":["198.18.255.252"],"conditions":{"ready":true}}]}' >/dev/null
expect_match "$(slice)" '198\.18\.255\.252' "svc-kinfer edited while the operator is down"
# And its status says it went to zero an hour from now, as a leader whose
# clock ran an hour ahead wrote it: the old operator compared each
# activation with that time, found it older, and stayed at zero for the
# hour (the activator's requests timing out); now a time ahead counts as now.
kc -n "$ns" patch kis svc --subresource=status --type=merge -p "{\"status\":{\"scaling\":{\"scaledToZeroAt\":\"$(iso_ms $(($(now_ms) + 3600000)))\"}}}" >/dev/null
expect_match "$(j kis/svc '{.status.scaling.scaledToZeroAt}')" "^$(date -u -d @$(($(date +%s) + 3600)) +%Y-%m-%dT%H)" "status.scaling.scaledToZeroAt set an hour ahead while the operator is down"
start_operator "$tmp/op2.log" --leader-elect=false --watch-namespace "$ns" || exit 1
if wait_until 15 as_before; then pass "after the start, the edit is undone ($(slice))"; else fail "after the start: '$(slice)', before '$before'"; fi
stayed=yes
for _ in $(seq 1 40); do [ "$(deploy_replicas)" = 0 ] || stayed=no; sleep 0.2; done
[ "$stayed" = yes ] && pass "an operator restart at zero keeps 0 replicas (8 s, never 1)" || fail "flapped to $(deploy_replicas) after the restart"
expect_match "$(rcond reason)" '^ScaledToZero$' "still Ready ScaledToZero after the restart"

# The activator's signal: 0 -> 1 at once, from an activator whose clock
# runs a minute behind the operator's: its time is older than the zero
# time (the restart's, the status's hour ahead counted as now), but newer
# than the activation the annotation held, the same clock's. The old
# operator compared it with the zero time only: not woken.
t0=$(now_ms)
kc -n "$ns" patch kis svc --type=merge -p "{\"metadata\":{\"annotations\":{\"kinfer.io/activation-requested\":\"$(iso_ms $((t0 - 60000)))\"}}}" >/dev/null
t1=$(now_ms)
if wait_until 10 at 1; then
	t2=$(now_ms)
	pass "activation a minute behind: Deployment replicas 1 seen $((t2 - t0)) ms after the patch was sent (patch took $((t1 - t0)) ms; evaluation interval 20 s)"
	[ $((t2 - t0)) -le 5000 ] || fail "the scale-up took $((t2 - t0)) ms: it waited for an evaluation"
else
	fail "not woken: Deployment at $(deploy_replicas)"
fi
grep -o 'msg="autoscaler scale from zero".*' "$tmp/op2.log" | head -1 | sed 's/^/     /'
if wait_until 60 warm 1; then pass "the woken replica is warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
got_event() { [ -n "$(events ScaledFromZero)" ]; }
wait_until 10 got_event
ev=$(events ScaledFromZero)
expect_match "$ev" 'Scaled from zero: the first replica is warm [0-9.]+ s after the activation requested at' "Event ScaledFromZero with the cold-start time"
echo "     $ev"
expect_match "$(rcond status) $(rcond reason)" '^True AllReplicasReady$' "Ready AllReplicasReady"
expect_match "$(j kis/svc '{.status.scaling.lastActivation}')" "^$(iso_ms $((t0 - 60000)))\$" "status.scaling.lastActivation is the activation"

# Idle again: back to zero, and the activation still on the object (older
# than the new zero time) does not wake it.
if wait_until 90 at 0; then pass "idle again: back to 0"; else fail "Deployment at $(deploy_replicas)"; fi
zero2=$(j kis/svc '{.status.scaling.scaledToZeroAt}')
[[ "$zero2" > "$zero_at" ]] && pass "a new scaledToZeroAt ($zero2)" || fail "scaledToZeroAt $zero2, first $zero_at"
stayed=yes
for _ in $(seq 1 25); do [ "$(deploy_replicas)" = 0 ] || stayed=no; sleep 0.2; done
[ "$stayed" = yes ] && pass "the old activation does not wake it again (5 s)" || fail "woken again: $(deploy_replicas)"
expect_match "$(rcond status) $(rcond reason)" '^True ScaledToZero$' "Ready True ScaledToZero again"

# A slice NAME-kinfer that is someone else's (no owner, no kinfer label: not
# in kinfer's watch) is never taken over; once it goes, kinfer's is made.
kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other-kinfer, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
endpoints: [{addresses: ["198.18.255.253"]}]
ports: [{name: http, port: 8000, protocol: TCP}]
YAML
cat >"$tmp/other.spec" <<YAML
  model: {name: m, uri: s3://m}
  resources: {gpu: {count: 1}}
  scaling:
    minReplicas: 0
    maxReplicas: 1
    metrics: [{type: QueueDepth, target: 5}]
    scaleToZero: {idleSeconds: 3}
YAML
apply_isvc other <"$tmp/other.spec"
other_msg() { j kis/other '{.status.conditions[*].message}'; }
refused() { [[ "$(other_msg)" == *"EndpointSlice other-kinfer already exists"* ]]; }
if wait_until 30 refused; then pass "another's slice other-kinfer: ResourceExists, not taken over"; else fail "status of other: $(j kis/other '{.status.conditions}')"; fi
theirs=$(kc -n "$ns" get endpointslice other-kinfer -o jsonpath='{.endpoints[0].addresses[0]} owners={.metadata.ownerReferences}')
expect_match "$theirs" '^198\.18\.255\.253 owners=$' "their slice is as they wrote it ($theirs)"
kc -n "$ns" delete endpointslice other-kinfer >/dev/null
ours() { [ "$(kc -n "$ns" get endpointslice other-kinfer -o jsonpath='{.metadata.ownerReferences[0].name}' 2>/dev/null)" = other ]; }
t=$SECONDS
if wait_until 45 ours; then pass "theirs deleted: kinfer's other-kinfer made $((SECONDS - t)) s later (looked at again every 30 s)"; else fail "no slice of ours: $(kc -n "$ns" get endpointslice -o name)"; fi

# `other` deleted and made again at once: its private Service and slice
# are still the first one's (held by a policy, as if the garbage collector
# had not got to them; the Deployment and Service go by hand, as it would
# remove them): the new one waits, WaitingForCleanup naming the private
# Service, not ResourceExists, and makes its own once they are gone.
uid1=$(j kis/other '{.metadata.uid}')
policy=kinfer-test-hold-s2z-$$
deny_policy "$policy" '{apiGroups: ["", "discovery.k8s.io"], apiVersions: ["v1"], operations: ["DELETE"], resources: ["services", "endpointslices"]}' \
	"!(oldObject.metadata.name in ['other-private', 'other-kinfer'])" "test: held"
held() { ! kc -n "$ns" delete svc other-private --dry-run=server >/dev/null 2>&1; }
if wait_until 20 held; then pass "the policy holds other-private"; else fail "the policy does not hold other-private"; fi
kc -n "$ns" delete kis other --wait=true >/dev/null
kc -n "$ns" delete deploy/other svc/other --ignore-not-found >/dev/null 2>&1
apply_isvc other <"$tmp/other.spec"
uid2=$(j kis/other '{.metadata.uid}')
waiting() { [ "$(cond other Progressing reason)" = WaitingForCleanup ]; }
if wait_until 20 waiting; then pass "other made again: Progressing WaitingForCleanup"; else fail "other: $(j kis/other '{.status.conditions}')"; fi
expect_match "$(cond other Ready message)" "^Service other-private still belongs to the InferenceService of this name deleted before this one \\(uid $uid1\\)" "the message names other-private and the first one's uid"
expect_match "$(cond other Degraded status)|$(j svc/other-private '{.metadata.ownerReferences[0].uid}')" "^False\\|$uid1\$" "not Degraded, other-private not taken over"
deny_policy_remove "$policy"
firsts_gone() { [ "$(j svc/other-private '{.metadata.ownerReferences[0].uid}')" != "$uid1" ] && [ "$(j endpointslice/other-kinfer '{.metadata.ownerReferences[0].uid}')" != "$uid1" ]; }
wait_until 10 firsts_gone || kc -n "$ns" delete svc/other-private endpointslice/other-kinfer --ignore-not-found --wait=false >/dev/null 2>&1
routed() { [ "$(j svc/other-private '{.metadata.ownerReferences[0].uid}')" = "$uid2" ] && [ "$(j endpointslice/other-kinfer '{.metadata.ownerReferences[0].uid}')" = "$uid2" ] && [ "$(cond other Progressing reason)" != WaitingForCleanup ]; }
if wait_until 40 routed; then pass "once they are gone: its own other-private and other-kinfer, no longer waiting"; else fail "other: private $(j svc/other-private '{.metadata.ownerReferences}') slice $(j endpointslice/other-kinfer '{.metadata.ownerReferences}') $(cond other Progressing reason)"; fi
# A user's Service third-private on its way out (a finalizer holds it),
# with the selector kinfer writes: kinfer never writes into it (the old
# operator's apply took it over: its owner reference), it waits for it to
# go, then makes its own.
kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: third-private, finalizers: [kinfer.io/test-hold]}
spec:
  selector: {kinfer.io/service: third}
  ports: [{name: user, port: 9999, protocol: TCP}]
YAML
at_exit "kc -n '$ns' patch svc third-private --type=merge -p '{\"metadata\":{\"finalizers\":null}}' >/dev/null 2>&1"
kc -n "$ns" delete svc third-private --wait=false >/dev/null
apply_isvc third <"$tmp/other.spec"
third_waits() { [ "$(cond third Progressing reason)" = WaitingForCleanup ]; }
if wait_until 20 third_waits; then pass "third: WaitingForCleanup while the user's third-private is being deleted"; else fail "third: $(j kis/third '{.status.conditions}')"; fi
expect_match "$(cond third Ready message)" '^Service third-private is being deleted; kinfer makes its own once it is gone$' "third: the message says so"
sleep 2
expect_match "$(j svc/third-private '{.metadata.ownerReferences}')|$(j svc/third-private '{.spec.ports[0].port}')" '^\|9999$' "third: nothing written into the Service on its way out"
kc -n "$ns" patch svc third-private --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
third_ours() { [ "$(j svc/third-private '{.metadata.ownerReferences[0].uid}')" = "$(j kis/third '{.metadata.uid}')" ] && [ "$(cond third Progressing reason)" != WaitingForCleanup ]; }
if wait_until 30 third_ours; then pass "third: once it is gone, kinfer makes its own third-private"; else fail "third: $(j svc/third-private '{.metadata}') $(cond third Progressing reason)"; fi
summary
