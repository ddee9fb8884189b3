#!/usr/bin/env bash
# Scenario: an upgrade that leaves the old ClusterRole in place (the new
# image rolled out, manifests/10-rbac.yaml not applied). This version also
# lists and watches HorizontalPodAutoscalers, and the API server forbids
# it. Before, that cache never synced and the manager waits for every
# cache: nothing was reconciled and /readyz said 503, a stop of every
# InferenceService for an advisory check. Now the operator says so once,
# goes on without the ConflictingAutoscaler check, and takes it up again
# within a minute of the rule being granted. The operator runs on a
# ServiceAccount's token bound to that ClusterRole, as in a cluster.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin rbacupgrade

install_crd
kc create ns "$ns" >/dev/null
cr=kinfer-test-old-$$
at_exit 'kc delete clusterrolebinding "$cr" --ignore-not-found --wait=false >/dev/null 2>&1'
at_exit 'kc delete clusterrole "$cr" --ignore-not-found --wait=false >/dev/null 2>&1'

# The ClusterRole of manifests/ without its autoscaling rule: the one an
# operator before HPA support was installed with.
kc apply --dry-run=client -f "$KINFER_SOURCE_DIR/manifests/10-rbac.yaml" -o json > "$tmp/rbac.json" ||
	{ echo "cannot read manifests/10-rbac.yaml" >&2; exit 1; }
python3 - "$tmp/rbac.json" "$cr" > "$tmp/old-role.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
role = next(i for i in items if i["kind"] == "ClusterRole" and i["metadata"]["name"] == "kinfer-operator")
role["metadata"] = {"name": sys.argv[2]}
role["rules"] = [r for r in role["rules"] if "autoscaling" not in r.get("apiGroups", [])]
json.dump(role, sys.stdout)
PY
kc apply -f "$tmp/old-role.json" >/dev/null || { echo "cannot create the old ClusterRole" >&2; exit 1; }
kc -n "$ns" create serviceaccount old-operator >/dev/null
kc create clusterrolebinding "$cr" --clusterrole="$cr" --serviceaccount="$ns:old-operator" >/dev/null
sa=system:serviceaccount:$ns:old-operator
expect_match "$(kc auth can-i list horizontalpodautoscalers.autoscaling --as="$sa" 2>&1) $(kc auth can-i list deployments.apps --as="$sa" 2>&1)" '^no yes$' \
	"the old ClusterRole: Deployments yes, HorizontalPodAutoscalers no"

# A kubeconfig of that ServiceAccount's token.
server=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
cadata=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
token=$(kc -n "$ns" create token old-operator --duration=1h)
cat > "$tmp/old.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$server", certificate-authority-data: "$cadata"}}]
users: [{name: u, user: {token: "$token"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
YAML
KINFER_TEST_KUBECONFIG="$tmp/old.kubeconfig" start_operator "$tmp/op.log" --leader-elect=false \
	--watch-namespace "$ns" || exit 1
http=$started_port
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$http/readyz")" = 200 ]; }
if wait_until 30 ready; then
	pass "/readyz 200 without the HorizontalPodAutoscaler rule"
else
	fail "/readyz: $(curl -s --max-time 2 "http://127.0.0.1:$http/readyz")"
fi
said=$(grep -c 'forbidden to list: going on without it' "$tmp/op.log")
expect_match "$said $(grep 'forbidden to list' "$tmp/op.log" | head -1)" \
	'^1 .*kind=HorizontalPodAutoscaler feature="the ConflictingAutoscaler check" want="list and watch on horizontalpodautoscalers in the ClusterRole' \
	"said once, naming the kind, what is off and the rule to add"

# Everything else is reconciled.
apply_isvc llm <<YAML
  replicas: 1
YAML
observed() { [ "$(j kis/llm '{.status.observedGeneration}')" = 1 ] && [ "$(j deploy/llm '{.spec.replicas}')" = 1 ]; }
if wait_until 30 observed; then
	pass "an InferenceService is reconciled: its Deployment made, its status written"
else
	fail "not reconciled: deployment '$(j deploy/llm '{.spec.replicas}')' status '$(j kis/llm '{.status}')'"
fi

# The rule granted (the upgrade finished): within a minute kinfer lists
# HPAs again, and one on its Deployment is reported.
python3 - "$tmp/rbac.json" "$cr" > "$tmp/new-role.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
role = next(i for i in items if i["kind"] == "ClusterRole" and i["metadata"]["name"] == "kinfer-operator")
role["metadata"] = {"name": sys.argv[2]}
json.dump(role, sys.stdout)
PY
kc apply -f "$tmp/new-role.json" >/dev/null
again() { grep -q '"allowed to list again".*kind=HorizontalPodAutoscaler\|msg="allowed to list again" kind=HorizontalPodAutoscaler' "$tmp/op.log"; }
if wait_until 75 again; then pass "the rule granted: HorizontalPodAutoscalers listed again"; else fail "not listed again: $(grep -i forbidden "$tmp/op.log" | tail -2)"; fi
kc -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: llm}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm}
  minReplicas: 1
  maxReplicas: 1
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}]
YAML
conflict() { [ "$(cond llm Degraded reason)" = ConflictingAutoscaler ]; }
if wait_until 30 conflict; then pass "... and the check is back: Degraded ConflictingAutoscaler"; else fail "Degraded: $(cond llm Degraded reason)"; fi

summary
