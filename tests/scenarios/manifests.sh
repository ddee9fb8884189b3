#!/usr/bin/env bash
# Scenario: manifests/ as a cluster admin applies them, on the real
# kube-apiserver (RBAC and Pod Security admission on). `kubectl apply -f
# crds/ -f manifests/` passes a server-side dry run without a warning, and
# so do the samples. The namespace and RBAC are really applied, and the real
# kinfer-operator runs with the ServiceAccount's token (not the admin's): it
# holds the Lease in kinfer-system, turns the vLLM sample into a Deployment,
# a Service, status and Events, warms its pod up (the model-server simulator
# answers), follows a spec change and releases the Lease on SIGTERM, without
# one Forbidden answer. It watches only the scenario's namespace, so as not
# to reconcile what other scenarios create meanwhile; the token's
# cluster-wide list is checked directly. `kubectl auth can-i` shows least
# privilege: yes for every call the operator makes (or will make, for the
# planned features), no for the rest. The operator's Deployment itself is
# not run (its image is not built here). Everything created is deleted at
# the end; the CRD stays installed (other scenarios may use it meanwhile).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
src=$KINFER_SOURCE_DIR
man=$src/manifests
crd=$src/crds/inferenceservice.yaml
sa=system:serviceaccount:kinfer-system:kinfer-operator
begin kinfer-manifests
export KUBECACHEDIR=$tmp/cache
# The operator's log once it stopped: its tail when a check failed.
at_exit 'stop_operators; stop_pid "$sim_pid"
	if [ "$failed" -ne 0 ] && [ -s "$tmp/op.log" ]; then
		echo "--- the operator'"'"'s log (last 40 lines)"
		tail -n 40 "$tmp/op.log"
	fi
	[ -z "${KINFER_KEEP_LOG:-}" ] || cp "$tmp/op.log" "$KINFER_KEEP_LOG" 2>/dev/null
	kc delete -f "$man/10-rbac.yaml" --ignore-not-found --wait=false >/dev/null 2>&1
	kc delete -f "$man/00-namespace.yaml" --ignore-not-found --wait=false >/dev/null 2>&1'
trap 'exit 130' INT TERM

# kubectl with a kubeconfig of ours (the ServiceAccount's token).
kcas() { (set -a; . "$KINFER_TEST_CLUSTER/env"; set +a; "$BIN/kubectl" --kubeconfig "$1" "${@:2}"); }
# can WANT VERB RESOURCE [ARGS...]: kubectl auth can-i as the ServiceAccount.
can() {
	local want=$1 got
	shift
	# (stderr: kubectl's note that a cluster-scoped resource has no namespace)
	got=$(kc auth can-i "$@" --as="$sa" 2>"$tmp/can-i.err")
	if [ "$got" = "$want" ]; then pass "can-i $* : $want"; else
		fail "can-i $* : '$got', want $want: $(cat "$tmp/can-i.err")"; fi
}
field() { kc -n "$ns" get "$1" "$2" -o jsonpath="{$3}" 2>/dev/null; }
field_is() { [ "$(field "$1" "$2" "$3")" = "$4" ]; }

# --- the files ------------------------------------------------------------------

files=("$man"/*.yaml)
expect_match "${files[0]##*/}" '^00-namespace\.yaml$' "the Namespace's file comes first in name order"
out=$(grep -l '^kind: InferenceService' "$man"/*.yaml 2>&1)
expect_match "${out:-none}" '^none$' "manifests/ itself holds no InferenceService (the CRD may not exist yet)"
out=$(grep -n '\*' "$man/10-rbac.yaml" | grep -v '^[0-9]*: *#')
expect_match "${out:-none}" '^none$' "RBAC has no wildcard"
out=$(grep -n 'secrets' "$man/10-rbac.yaml" | grep -v '^[0-9]*: *#')
expect_match "${out:-none}" '^none$' "RBAC grants nothing on Secrets"

# Client-side: every file parses; README.md and Dockerfile are skipped.
out=$(kc apply --dry-run=client -f "$src/crds/" -f "$man/" 2>&1)
expect_code 0 $? "kubectl apply --dry-run=client -f crds/ -f manifests/"
n=$(printf '%s\n' "$out" | grep -c '(dry run)$')
expect_match "$n" '^18$' "18 objects: CRD, Namespace, ServiceAccount, 4 RBAC, Service, Deployment, PDB, 2 webhook configurations; the activator's ServiceAccount, 2 RBAC, Service, Deployment, PDB ($n)"
# The webhook configurations: only kinfer.io InferenceServices, v1 reviews,
# no side effects, fail closed, bounded time.
wh=$(kc apply --dry-run=client -f "$man/50-webhooks.yaml" -o jsonpath='{range .items[*]}{.kind} {.webhooks[0].sideEffects} {.webhooks[0].failurePolicy} {.webhooks[0].timeoutSeconds} {.webhooks[0].admissionReviewVersions} {.webhooks[0].rules[0].apiGroups} {.webhooks[0].rules[0].resources} {.webhooks[0].clientConfig.service.port}{"\n"}{end}' 2>&1)
expect_match "$wh" '^MutatingWebhookConfiguration None Fail 5 \["v1"\] \["kinfer.io"\] \["inferenceservices"\] 9443$' "mutating webhook: sideEffects None, failurePolicy Fail, 5 s, v1, kinfer.io inferenceservices, port 9443"
expect_match "$wh" '^ValidatingWebhookConfiguration None Fail 5 \["v1"\] \["kinfer.io"\] \["inferenceservices"\] 9443$' "validating webhook: the same"
# The scale webhook: Deployments' and InferenceServices' scale, fail open (it sees every
# Deployment's scale in the cluster but kube-system's), bounded time.
wh=$(kc apply --dry-run=client -f "$man/50-webhooks.yaml" -o jsonpath='{range .items[*]}{range .webhooks[1:]}{.name} {.sideEffects} {.failurePolicy} {.timeoutSeconds} {.rules[0].apiGroups} {.rules[0].operations} {.rules[0].resources} {.rules[1].apiGroups} {.rules[1].resources} {.clientConfig.service.path} {.namespaceSelector.matchExpressions[0].values}{"\n"}{end}{end}' 2>&1)
expect_match "$wh" '^scale.kinfer.io None Ignore 2 \["apps"\] \["UPDATE"\] \["deployments/scale"\] \["kinfer.io"\] \["inferenceservices/scale"\] /validate-scale \["kube-system"\]$' \
	"scale webhook: apps deployments/scale and kinfer.io inferenceservices/scale UPDATE, failurePolicy Ignore, 2 s, /validate-scale, not kube-system ($wh)"

# Server-side dry run persists nothing, so the Namespace it "creates" does
# not exist for the objects after it (a real apply creates it first, the
# files being in name order): apply the Namespace for real, then dry-run
# everything. The Namespace enforces and warns on the "restricted" Pod
# Security Standard, so the Deployment's pod template is checked too.
out=$(kc apply -f "$man/00-namespace.yaml" 2>&1); expect_code 0 $? "the Namespace and ServiceAccount apply"
out=$(kc apply --dry-run=server -f "$src/crds/" -f "$man/" 2>&1)
expect_code 0 $? "kubectl apply --dry-run=server -f crds/ -f manifests/"
for o in 'customresourcedefinition.apiextensions.k8s.io/inferenceservices.kinfer.io' \
	'namespace/kinfer-system' 'serviceaccount/kinfer-operator' \
	'clusterrole.rbac.authorization.k8s.io/kinfer-operator' \
	'clusterrolebinding.rbac.authorization.k8s.io/kinfer-operator' \
	'role.rbac.authorization.k8s.io/kinfer-operator-leader-election' \
	'rolebinding.rbac.authorization.k8s.io/kinfer-operator-leader-election' \
	'service/kinfer-operator' 'deployment.apps/kinfer-operator' \
	'poddisruptionbudget.policy/kinfer-operator' \
	'mutatingwebhookconfiguration.admissionregistration.k8s.io/kinfer-operator' \
	'validatingwebhookconfiguration.admissionregistration.k8s.io/kinfer-operator' \
	'serviceaccount/kinfer-activator' 'clusterrole.rbac.authorization.k8s.io/kinfer-activator' \
	'clusterrolebinding.rbac.authorization.k8s.io/kinfer-activator' \
	'service/kinfer-activator' 'deployment.apps/kinfer-activator' \
	'poddisruptionbudget.policy/kinfer-activator'; do
	expect_match "$out" "^$o (created|configured|unchanged) \(server dry run\)" "server dry run: $o"
done
# (kubectl's own note on an object created by server-side apply, such as the
# CRD when scenario.crd applied it, is not a warning about the manifests.)
w=$(printf '%s\n' "$out" | grep -i 'warning' | grep -v 'last-applied-configuration annotation')
expect_match "${w:-none}" '^none$' "server dry run: no warning (Pod Security restricted, deprecations)"
# The webhook key is mounted 0440 (root-owned): the pod, running as 65532,
# reads it only through fsGroup 65532 (issue 12 item 14; the real-node
# test runs the image to prove it).
dep=$(kc apply --dry-run=client -f "$man/30-deployment.yaml" -o jsonpath='{.spec.template.spec.securityContext.runAsUser} {.spec.template.spec.securityContext.fsGroup} {.spec.template.spec.volumes[?(@.name=="webhook-tls")].secret.defaultMode}' 2>&1)
expect_match "$dep" '^65532 65532 288$' "the Deployment runs as 65532 with fsGroup 65532 for its 0440 Secret volume ($dep)"
# ... and the check has teeth: a pod template that breaks "restricted" is warned about.
out=$(sed 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' "$man/30-deployment.yaml" |
	kc apply --dry-run=server -f - 2>&1)
expect_match "$out" 'would violate PodSecurity "restricted' "a Deployment that escalates privileges would be warned about"

# --- the samples, against the real CRD -----------------------------------------

out=$(kc apply --server-side --force-conflicts -f "$crd" 2>&1); expect_code 0 $? "the CRD is applied (idempotent)"
out=$(kc wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=30s 2>&1)
expect_code 0 $? "the CRD is Established"
out=$(kc create namespace "$ns" 2>&1); expect_code 0 $? "namespace $ns is created"
out=$(kc -n "$ns" apply --dry-run=server -f "$man/samples/" 2>&1)
expect_code 0 $? "kubectl apply --dry-run=server -f manifests/samples/"
for s in llama-7b resnet50 mistral-7b; do
	expect_match "$out" "^inferenceservice.kinfer.io/$s created \(server dry run\)" "sample $s passes the schema and CEL rules"
done
expect_match "$(printf '%s\n' "$out" | grep -c 'server dry run')" '^3$' "three samples"

# --- RBAC for real, and least privilege ------------------------------------------

out=$(kc apply -f "$man/00-namespace.yaml" -f "$man/10-rbac.yaml" 2>&1)
expect_code 0 $? "the Namespace and RBAC apply"

set -f   # '* *' below is not a glob
for a in "list inferenceservices.kinfer.io -A" "watch inferenceservices.kinfer.io -A" \
	"patch inferenceservices.kinfer.io --subresource=status -n $ns" \
	"list deployments.apps -A" "watch deployments.apps -A" \
	"create deployments.apps -n $ns" "patch deployments.apps -n $ns" \
	"list services -A" "watch services -A" "create services -n $ns" "patch services -n $ns" \
	"list pods -A" "watch pods -A" "create events.events.k8s.io -n $ns" \
	"create leases.coordination.k8s.io -n kinfer-system" \
	"get leases.coordination.k8s.io/kinfer-operator -n kinfer-system" \
	"update leases.coordination.k8s.io/kinfer-operator -n kinfer-system" \
	"patch pods --subresource=status -n $ns" "patch pods -n $ns" "delete pods -n $ns" \
	"create pods --subresource=binding -n $ns" "list nodes" "watch nodes" \
	"delete services -n $ns" "create endpointslices.discovery.k8s.io -n $ns" \
	"patch endpointslices.discovery.k8s.io -n $ns" "delete endpoints -n $ns" \
	"list endpointslices.discovery.k8s.io -A" "watch endpointslices.discovery.k8s.io -A" \
	"deletecollection endpointslices.discovery.k8s.io -n $ns" \
	"list poddisruptionbudgets.policy -A" "watch poddisruptionbudgets.policy -A" \
	"create poddisruptionbudgets.policy -n $ns" "patch poddisruptionbudgets.policy -n $ns" \
	"delete poddisruptionbudgets.policy -n $ns" \
	"list horizontalpodautoscalers.autoscaling -A" "watch horizontalpodautoscalers.autoscaling -A"; do
	# shellcheck disable=SC2086
	can yes $a
done
for a in "get secrets -n $ns" "list secrets -A" "get secrets -n kinfer-system" \
	"delete deployments.apps -n $ns" "update deployments.apps -n $ns" \
	"update services -n $ns" "update inferenceservices.kinfer.io -n $ns" \
	"create endpoints -n $ns" "update endpointslices.discovery.k8s.io -n $ns" \
	"delete inferenceservices.kinfer.io -n $ns" "create inferenceservices.kinfer.io -n $ns" \
	"create pods -n $ns" "create pods --subresource=exec -n $ns" "list configmaps -A" \
	"create clusterroles.rbac.authorization.k8s.io" "create rolebindings.rbac.authorization.k8s.io -n $ns" \
	"update leases.coordination.k8s.io -n default" "create leases.coordination.k8s.io -n default" \
	"update leases.coordination.k8s.io/other -n kinfer-system" \
	"delete leases.coordination.k8s.io/kinfer-operator -n kinfer-system" \
	"patch nodes" "create events -n $ns" "update poddisruptionbudgets.policy -n $ns" \
	"patch horizontalpodautoscalers.autoscaling -n $ns" \
	"create validatingwebhookconfigurations.admissionregistration.k8s.io" '* *'; do
	# shellcheck disable=SC2086
	can no $a
done
set +f

# --- the operator with the ServiceAccount's token ---------------------------------

token=$(kc -n kinfer-system create token kinfer-operator --duration=1h 2>&1)
expect_code 0 $? "a token for the ServiceAccount is minted"
server=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
# kubeconfig FILE TOKEN
kubeconfig() {
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: kinfer-operator
  user: {token: "$2"}
contexts:
- name: kinfer-operator
  context: {cluster: local, user: kinfer-operator, namespace: kinfer-system}
current-context: kinfer-operator
EOF
}
kubeconfig "$tmp/sa.kubeconfig" "$token"
kubeconfig "$tmp/bad.kubeconfig" "not-a-token"
out=$(kcas "$tmp/sa.kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)
expect_match "$out" "^$sa\$" "the token authenticates as $sa"
out=$(kcas "$tmp/sa.kubeconfig" get secrets -A 2>&1)
expect_match "$out" 'Forbidden|forbidden' "the token cannot list Secrets"

# lib.sh's start_operator passes the admin kubeconfig first; the last
# --kubeconfig wins (operator/flags.c). Proof: a bad token after it is what
# the operator uses, and the server refuses it.
timeout 30 "$KINFER_OPERATOR" run --kubeconfig "$KINFER_TEST_KUBECONFIG" --kubeconfig "$tmp/bad.kubeconfig" \
	--http-addr 127.0.0.1:0 2>"$tmp/bad.log"
expect_code 1 $? "with a later --kubeconfig holding a bad token the operator exits 1"
expect_match "$(cat "$tmp/bad.log")" '401|Unauthorized' "... refused by the server: the later --kubeconfig is the one used"

# The real operator watches every namespace; here it watches only ours, so
# it never touches what other scenarios run at the same time create. Its
# kinds are listed in every namespace with the same token first.
out=$(kcas "$tmp/sa.kubeconfig" get inferenceservices.kinfer.io,deployments.apps,services,pods -A -o name 2>&1)
expect_code 0 $? "the token lists InferenceServices, Deployments, Services and Pods in every namespace"
start_operator "$tmp/op.log" --kubeconfig "$tmp/sa.kubeconfig" --leader-election-namespace kinfer-system \
	--watch-namespace "$ns" || exit 1
pid=$started_pid port=$started_port
expect_match "$(cat "$tmp/op.log")" "API client configured.* source=$tmp/sa.kubeconfig" "the operator uses the ServiceAccount's kubeconfig"
readyz() { curl -s --max-time 2 "http://127.0.0.1:$port/readyz" | grep -q '^ok'; }
is_leader() { [ "$(metric "$port" kinfer_leader)" = 1 ]; }
if wait_until 60 readyz; then pass "/readyz is ok: every informer listed and watches with the token"; else
	fail "/readyz: $(curl -s --max-time 2 "http://127.0.0.1:$port/readyz")"; fi
if wait_until 30 is_leader; then pass "the operator is the leader"; else fail "not the leader after 30 s"; fi
holder=$(kc -n kinfer-system get lease kinfer-operator -o jsonpath='{.spec.holderIdentity}' 2>&1)
expect_match "$(cat "$tmp/op.log")" "became the leader.*lease=kinfer-system/kinfer-operator identity=$holder" "it holds the Lease kinfer-system/kinfer-operator ($holder)"

# The model-server simulator answers on the pods' IPs (harness, admin
# credentials), so warm-up gating runs too: it writes pods/status.
start_sim --load-seconds 1s
out=$(kc -n "$ns" apply -f "$man/samples/vllm.yaml" 2>&1); expect_code 0 $? "the vLLM sample is applied"
if wait_until 60 field_is kis llama-7b .status.observedGeneration 1; then pass "status.observedGeneration becomes 1"; else
	fail "status: $(kc -n "$ns" get kis llama-7b -o jsonpath='{.status}' 2>&1)"; fi
expect_match "$(field deployment llama-7b '.metadata.ownerReferences[0].kind')" '^InferenceService$' "the Deployment exists, owned by the InferenceService"
expect_match "$(field deployment llama-7b '.metadata.managedFields[*].manager')" 'kinfer-operator' "the Deployment is applied by field manager kinfer-operator"
expect_match "$(field service llama-7b '.metadata.ownerReferences[0].kind')" '^InferenceService$' "the Service exists, owned by the InferenceService"
expect_match "$(field kis llama-7b '.status.conditions[*].type')" 'Ready' "status has conditions"
events() { kc -n "$ns" get events.events.k8s.io -o jsonpath='{range .items[*]}{.reason} {.reportingController}{"\n"}{end}' 2>/dev/null; }
has_event() { events | grep -q "^$1 kinfer.io/kinfer-operator\$"; }
if wait_until 10 has_event DeploymentCreated; then pass "the Event DeploymentCreated is created"; else fail "events: $(events)"; fi

out=$(kc -n "$ns" wait --for=condition=Ready kis/llama-7b --timeout=60s 2>&1)
expect_code 0 $? "the sample becomes Ready: a pod ran, warmed up and joined"
out=$(kc -n "$ns" get pods -l kinfer.io/service=llama-7b \
	-o jsonpath='{.items[*].status.conditions[?(@.type=="kinfer.io/warmed-up")].status}' 2>&1)
expect_match "$out" 'True' "the pod's kinfer.io/warmed-up condition is True (pods/status written with the token)"

# A spec change: the existing Deployment is applied again (patch only).
out=$(kc -n "$ns" patch kis llama-7b --type=merge -p '{"spec":{"args":["--max-model-len=8192"]}}' 2>&1)
expect_code 0 $? "the spec changes"
if wait_until 60 field_is kis llama-7b .status.observedGeneration 2; then pass "status.observedGeneration follows to 2"; else
	fail "observedGeneration: $(field kis llama-7b .status.observedGeneration)"; fi
expect_match "$(field deployment llama-7b '.spec.template.spec.containers[0].args')" 'max-model-len=8192' "the Deployment follows the change"

m=$(curl -s --max-time 2 "http://127.0.0.1:$port/metrics")
expect_match "$m" 'kinfer_api_requests_total\{verb="patch",code="(200|201)"\} [1-9]' "this operator's applies and status patches succeeded"
expect_match "$m" 'kinfer_reconcile_total\{controller="inferenceservice",result="success"\} [1-9]' "this operator's reconciles succeeded"
w=$(printf '%s\n' "$m" | grep -E '^kinfer_api_requests_total\{.*code="40[13]"')
expect_match "${w:-none}" '^none$' "no API request answered 401 or 403 (metrics)"

# A clean stop releases the Lease (an update of the named Lease).
kill -TERM "$pid"
wait "$pid"; expect_code 0 $? "SIGTERM: the operator exits 0"
log=$(cat "$tmp/op.log")
expect_match "$log" 'released the leader lease' "it released the Lease"
n=$(grep -Eci 'forbidden|code=403|"403"|cannot (get|list|watch|create|update|patch)' "$tmp/op.log")
expect_match "$n" '^0$' "no Forbidden in the operator's log"
[ "$n" -eq 0 ] || grep -Ei 'forbidden|code=403|"403"' "$tmp/op.log" | head -5
summary
