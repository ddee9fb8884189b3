#!/usr/bin/env bash
# Scenario (issue 12, item 2): kinfer never takes over a Service or a
# Deployment it does not control. A user's Service `api` and Deployment
# `web` exist first; InferenceServices of the same names get Degraded
# reason ResourceExists (the message names the kind and the name) and a
# Warning Event, while the user's objects keep their selector, image and
# owners; once the user's Service goes, kinfer makes its own and the
# InferenceService recovers; deleting an InferenceService never collects
# the user's Deployment.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin ownership

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
summary
