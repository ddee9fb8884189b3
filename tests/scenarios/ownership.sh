#!/usr/bin/env bash
# Scenario (issue 12, item 2): kinfer never takes over a Service or a
# Deployment it does not control. A user's Service `api` and Deployment
# `web` exist first; InferenceServices of the same names get Degraded
# reason ResourceExists (the message names the kind and the name) and a
# Warning Event, while the user's objects keep their selector, image and
# owners; once the user's Service goes, kinfer makes its own and the
# InferenceService recovers; deleting an InferenceService never collects
# the user's Deployment. And the other side of that rule: an
# InferenceService deleted and made again at once (`kubectl delete` then
# `apply`, `kubectl replace --force`, a GitOps tool's recreate) meets the
# Deployment and Service of its predecessor, which are not someone else's:
# while the garbage collector has not removed them (held here by a policy
# refusing their deletion) it waits, Progressing and Ready reason
# WaitingForCleanup naming them, Degraded False, no ResourceExists, the old
# objects untouched; once they are gone kinfer makes its own. Last, the
# namespace deleted under a live InferenceService: the apply refused with
# NamespaceTerminating is not retried.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin ownership
policy=kinfer-test-hold-$$

install_crd
kc create ns "$ns" >/dev/null
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
is_reason() { [ "$(cond "$1" "$2" reason)" = "$3" ]; }
isvc() {
	apply_isvc "$1" <<YAML
  replicas: 1
YAML
}

# The user's objects, made before the InferenceServices.
kc -n "$ns" create service clusterip api --tcp=80:8080 >/dev/null
kc -n "$ns" create deployment web --image=registry.k8s.io/pause:3.10 --replicas=0 >/dev/null
svc_before=$(j svc/api '{.spec.selector}')
isvc api
isvc web

if wait_until 20 is_reason api Degraded ResourceExists; then pass "api: Degraded reason ResourceExists"; else fail "api: $(j kis/api '{.status.conditions}')"; fi
expect_match "$(cond api Degraded message)" 'Service api .*not controlled by this InferenceService' "api: the message names the Service"
expect_match "$(cond api Degraded status)/$(cond api Ready status)" '^True/False$' "api: Degraded True, Ready False"
if wait_until 20 is_reason web Degraded ResourceExists; then pass "web: Degraded reason ResourceExists"; else fail "web: $(j kis/web '{.status.conditions}')"; fi
expect_match "$(cond web Degraded message)" 'Deployment web .*not controlled by this InferenceService' "web: the message names the Deployment"
warnings() { kc -n "$ns" get events --field-selector "involvedObject.name=$1,type=Warning" -o jsonpath='{.items[*].reason}'; }
has_warning() { grep -qw ResourceExists <<<"$(warnings "$1")"; }
if wait_until 10 has_warning api; then pass "a Warning Event ResourceExists on api"; else fail "events: $(warnings api)"; fi

# Nothing of the user's was touched.
sleep 2
expect_match "$(j svc/api '{.spec.selector}')" "^$(printf '%s' "$svc_before" | sed 's/[][\.*^$]/\\&/g')\$" "the user's Service keeps its selector ($svc_before)"
expect_match "$(j svc/api '{.metadata.ownerReferences}')" '^$' "the user's Service got no owner"
expect_match "$(j deploy/web '{.spec.template.spec.containers[0].image}')" '^registry.k8s.io/pause:3.10$' "the user's Deployment keeps its image"
expect_match "$(j deploy/web '{.metadata.ownerReferences}')" '^$' "the user's Deployment got no owner"
if grep -q 'kinfer-operator' <<<"$(j deploy/web '{.metadata.managedFields[*].manager}') $(j svc/api '{.metadata.managedFields[*].manager}')"; then
	fail "kinfer-operator appears in managedFields"
else
	pass "kinfer-operator is in neither object's managedFields"
fi
expect_match "$(j deploy/api '{.metadata.name}')" '^$' "no Deployment made for api while its Service is the user's"

# The user's Service goes: kinfer makes its own, and api recovers.
kc -n "$ns" delete svc api --wait=true >/dev/null
owned() { [ "$(j svc/api '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" = InferenceService/api ]; }
if wait_until 20 owned; then pass "after the user's Service is deleted, kinfer makes its own (retried when it went)"; else fail "svc/api: $(j svc/api '{.metadata}')"; fi
if wait_until 20 j deploy/api '{.metadata.name}' >/dev/null; then pass "and the Deployment"; else fail "no Deployment for api"; fi
not_degraded() { [ "$(cond api Degraded status)" = False ]; }
if wait_until 20 not_degraded; then pass "api: Degraded False again"; else fail "api: $(cond api Degraded reason)"; fi

# Deleting an InferenceService never collects what it does not own.
kc -n "$ns" delete kis web --wait=true >/dev/null
sleep 3
expect_match "$(j deploy/web '{.metadata.name}')" '^web$' "deleting InferenceService web leaves the user's Deployment web"

# A user's Deployment on its way out (a finalizer holds it), with the
# selector kinfer would write (so the API server would take kinfer's
# apply; the old operator's went into it): kinfer never writes into it, it
# waits for it to go.
kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: held, finalizers: [kinfer.io/test-hold]}
spec:
  replicas: 0
  selector: {matchLabels: {kinfer.io/service: held}}
  template:
    metadata: {labels: {kinfer.io/service: held}}
    spec: {containers: [{name: c, image: registry.k8s.io/pause:3.10}]}
YAML
at_exit "kc -n '$ns' patch deploy held --type=merge -p '{\"metadata\":{\"finalizers\":null}}' >/dev/null 2>&1"
isvc held
if wait_until 20 is_reason held Degraded ResourceExists; then pass "held: ResourceExists while the user's Deployment stands"; else fail "held: $(j kis/held '{.status.conditions}')"; fi
kc -n "$ns" delete deploy held --wait=false >/dev/null
if wait_until 20 is_reason held Progressing WaitingForCleanup; then pass "held: WaitingForCleanup once it is being deleted"; else fail "held: $(j kis/held '{.status.conditions}')"; fi
expect_match "$(cond held Ready message)" '^Deployment held is being deleted; kinfer makes its own once it is gone$' "held: the message says so"
sleep 2
expect_match "$(j deploy/held '{.metadata.ownerReferences}')|$(j deploy/held '{.spec.template.spec.containers[0].image}')" '^\|registry.k8s.io/pause:3.10$' "held: nothing written into the Deployment on its way out"
kc -n "$ns" patch deploy held --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
owned_held() { [ "$(j deploy/held '{.metadata.ownerReferences[0].uid}')" = "$(j kis/held '{.metadata.uid}')" ]; }
if wait_until 20 owned_held; then pass "held: once it is gone, kinfer makes its own"; else fail "held: $(j deploy/held '{.metadata}')"; fi

# Deleted and made again at once: the predecessor's objects are not foreign.
isvc again
owner_uid() { j "$1" '{.metadata.ownerReferences[0].uid}'; }
uid1=
first() { uid1=$(j kis/again '{.metadata.uid}') && [ -n "$uid1" ] && [ "$(owner_uid deploy/again)" = "$uid1" ] && [ "$(owner_uid svc/again)" = "$uid1" ]; }
if wait_until 20 first; then pass "again: its Deployment and Service"; else fail "again: no Deployment or Service"; fi
deny_policy "$policy" '{apiGroups: ["", "apps"], apiVersions: ["v1"], operations: ["DELETE"], resources: ["services", "deployments"]}' \
	"oldObject.metadata.name != 'again'" "test: held, as if the garbage collector had not got to it yet"
held() { ! kc -n "$ns" delete deploy again --dry-run=server >/dev/null 2>&1 && ! kc -n "$ns" delete svc again --dry-run=server >/dev/null 2>&1; }
if wait_until 20 held; then pass "the policy holds the first one's Deployment and Service"; else fail "the policy does not hold them"; fi
kc -n "$ns" delete kis again --wait=true >/dev/null
isvc again
uid2=$(j kis/again '{.metadata.uid}')
expect_match "$uid2" "^[0-9a-f-]+\$" "again made anew (uid $uid2, was $uid1)"
if wait_until 20 is_reason again Progressing WaitingForCleanup; then pass "again: Progressing reason WaitingForCleanup"; else fail "again: $(j kis/again '{.status.conditions}')"; fi
expect_match "$(cond again Progressing message)" "^Deployment and Service again still belong to the InferenceService of this name deleted before this one \\(uid $uid1\\); kinfer makes its own once Kubernetes' garbage collector has removed them\$" "again: the message names both objects and the first one's uid"
expect_match "$(cond again Ready status)/$(cond again Ready reason)" '^False/WaitingForCleanup$' "again: Ready False, reason WaitingForCleanup"
expect_match "$(cond again Degraded status)" '^False$' "again: not Degraded"
sleep 2
expect_match "$(kc -n "$ns" get events --field-selector involvedObject.kind=InferenceService,involvedObject.name=again,type=Warning -o jsonpath='{.items[*].reason}')" '^$' "again: no Warning Event (ResourceExists was the old answer)"
normal() { grep -qw WaitingForCleanup <<<"$(kc -n "$ns" get events --field-selector involvedObject.name=again,type=Normal -o jsonpath='{.items[*].reason}')"; }
if wait_until 10 normal; then pass "again: a Normal Event WaitingForCleanup"; else fail "again: no WaitingForCleanup Event"; fi
expect_match "$(owner_uid deploy/again) $(owner_uid svc/again)" "^$uid1 $uid1\$" "the first one's objects are not taken over"
# The garbage collector's turn (or, if it has not learnt the CRD's kind
# yet, which takes it up to 30 s, the same delete by hand).
deny_policy_remove "$policy"
gone() { [ -z "$(j deploy/again '{.metadata.uid}')$(j svc/again '{.metadata.uid}')" ] || [ "$(owner_uid deploy/again)" = "$uid2" ]; }
if ! wait_until 10 gone; then
	kc -n "$ns" delete deploy/again svc/again --ignore-not-found --wait=false >/dev/null 2>&1 || true
fi
second() { [ "$(owner_uid deploy/again)" = "$uid2" ] && [ "$(owner_uid svc/again)" = "$uid2" ]; }
if wait_until 30 second; then pass "once they are gone, kinfer makes its own Deployment and Service"; else fail "again: deploy $(owner_uid deploy/again) svc $(owner_uid svc/again)"; fi
moved_on() { [ "$(cond again Progressing reason)" != WaitingForCleanup ] && [ "$(cond again Degraded status)" = False ]; }
if wait_until 20 moved_on; then pass "again: no longer waiting ($(cond again Progressing reason))"; else fail "again: $(j kis/again '{.status.conditions}')"; fi
# The namespace deleted: the namespace controller removes the Deployment
# and Service while the InferenceService is still there (a policy holds it,
# as the controller's order usually does for a moment). kinfer's apply to
# make them again is refused ("being terminated", cause
# NamespaceTerminating): not retried (the old operator retried each key
# with backoff and a warning per try), one info line; once the policy
# goes, the namespace goes.
deny_policy "$policy-ns" '{apiGroups: ["kinfer.io"], apiVersions: ["v1alpha1"], operations: ["DELETE"], resources: ["inferenceservices"]}' \
	"oldObject.metadata.name != 'again'" "test: held while the namespace goes"
kis_held() { ! kc -n "$ns" delete kis again --dry-run=server >/dev/null 2>&1; }
if wait_until 20 kis_held; then pass "the policy holds InferenceService again"; else fail "the policy does not hold it"; fi
kc delete ns "$ns" --wait=false >/dev/null
not_retried() { grep -q "namespace is being deleted: not retried.*key=$ns/again" "$tmp/op.log"; }
if wait_until 30 not_retried; then pass "namespace deleted: kinfer's apply refused, not retried ($(grep -m1 -o 'namespace is being deleted: not retried.*key=[^ ]*' "$tmp/op.log"))"; else fail "no 'not retried' line: $(grep -c 'being terminated' "$tmp/op.log") lines name the namespace's termination"; fi
sleep 3
expect_match "$(grep 'will retry' "$tmp/op.log" | grep -c 'being terminated')" '^0$' "no retry of a write the terminating namespace refuses"
n=$(grep -c "not retried.*key=$ns/again" "$tmp/op.log")
[ "$n" -le 4 ] && pass "$n info lines for again in 3 s" || fail "$n 'not retried' lines for again in 3 s"
deny_policy_remove "$policy-ns"
ns_gone() { ! kc get ns "$ns" >/dev/null 2>&1; }
if wait_until 60 ns_gone; then pass "the namespace is gone once the policy goes"; else fail "namespace $ns still there: $(kc get ns "$ns" -o jsonpath='{.status}')"; fi
summary
