#!/usr/bin/env bash
# Scenario: the InferenceService CRD (crds/inferenceservice.yaml) as a user
# meets it, on the real kube-apiserver. The CRD is applied and Established;
# its schema has a description on every field and bounds on every string,
# list and map; each manifest in tests/crds/good is stored with the schema's
# defaults and nothing pruned; each one of tests/data/refused marked
# `# refused-by: crd` is refused by `kubectl apply` with the message its
# `# expect: ...` line names (literally);
# explain, printer columns, short name, category, field selectors, the
# status and scale subresources and `kubectl wait` work. Everything happens
# in a namespace of its own, deleted at the end; the CRD stays installed
# (other scenarios may use it at the same time).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
src=$KINFER_SOURCE_DIR
crd=$src/crds/inferenceservice.yaml
good=$src/tests/crds/good
begin kinfer-crd
# kubectl's discovery cache is ours, so a stale one of the user's cannot
# hide the new resource, and we leave nothing in ~/.kube.
export KUBECACHEDIR=$tmp/cache

# retry SECONDS CMD...: run CMD until it succeeds or the time is up.
retry() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}

# expect_field OBJECT JSONPATH WANT: the stored object's field equals WANT.
expect_field() {
	local got
	got=$(kc -n "$ns" get kis "$1" -o jsonpath="{$2}" 2>&1)
	if [ "$got" = "$3" ]; then pass "$1: $2 is $3"; else fail "$1: $2 is '$got', want '$3'"; fi
}

# --- the CRD itself ------------------------------------------------------------

out=$(kc apply --server-side -f "$crd" 2>&1); expect_code 0 $? "CRD applies"
expect_match "$out" 'inferenceservices.kinfer.io serverside-applied' "CRD is server-side applied"
out=$(kc wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=30s 2>&1)
expect_code 0 $? "CRD is Established within 30 s"
out=$(kc get crd inferenceservices.kinfer.io -o jsonpath='{.spec.names.shortNames} {.spec.names.categories} {.spec.scope} {.spec.versions[0].name}' 2>&1)
expect_match "$out" '^\["kis"\] \["kinfer"\] Namespaced v1alpha1$' "names: short name kis, category kinfer, namespaced, v1alpha1"
# explain reads the published OpenAPI, which follows Established by a moment.
retry 30 kc explain kis.spec.scaling; expect_code 0 $? "kubectl explain kis.spec.scaling answers within 30 s"

# Schema hygiene, from the stored CRD: every named field has a description,
# every string a maxLength (or an enum, or a date-time format), every list a
# maxItems, every map a maxProperties; every CEL rule a message naming a field.
kc get crd inferenceservices.kinfer.io -o json >"$tmp/crd.json"
out=$(python3 - "$tmp/crd.json" <<'PY' 2>&1
import json, sys
crd = json.load(open(sys.argv[1]))
root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
problems, rules = [], 0
def walk(s, path, named):
    global rules
    t = s.get("type")
    if named and "description" not in s and path != ".metadata":
        problems.append(path + ": no description")
    if t == "string" and not ({"maxLength", "enum"} & s.keys()) and s.get("format") != "date-time" \
            and path not in (".apiVersion", ".kind"):
        problems.append(path + ": string without maxLength")
    if t == "array":
        if "maxItems" not in s:
            problems.append(path + ": list without maxItems")
        walk(s["items"], path + "[]", False)
    if isinstance(s.get("additionalProperties"), dict):
        if "maxProperties" not in s:
            problems.append(path + ": map without maxProperties")
        walk(s["additionalProperties"], path + "{}", False)
    for r in s.get("x-kubernetes-validations", []):
        rules += 1
        if not r.get("message", "").startswith(("spec.", "metadata.")):
            problems.append(path + ": rule without a message naming the field: " + r["rule"])
    for k, v in s.get("properties", {}).items():
        walk(v, path + "." + k, True)
walk(root, "", False)
print("\n".join(problems) if problems else "clean, %d CEL rules" % rules)
PY
)
expect_match "$out" '^clean, [0-9]+ CEL rules$' "schema: descriptions, bounds and rule messages everywhere"

out=$(kc create namespace "$ns" 2>&1); expect_code 0 $? "namespace $ns is created"

# --- good manifests: stored, defaulted, nothing pruned ---------------------------

ngood=0
for f in "$good"/*.yaml; do
	out=$(kc -n "$ns" apply -f "$f" 2>&1); expect_code 0 $? "good/${f##*/} is accepted"
	ngood=$((ngood + 1))
done

# The schema's defaults, on the minimal manifest and on partial ones.
expect_field minimal .spec.model.framework vllm
expect_field minimal .spec.replicas 1
expect_field minimal .spec.drain.timeoutSeconds 120
expect_field minimal .spec.drain.disruptionBudget true
expect_field minimal .spec.drain.maxUnavailable 1
expect_field minimal .spec.scheduling.priority normal
expect_field minimal .spec.scheduling.preferCachedNodes true
expect_field minimal .spec.scaling ""
expect_field minimal .spec.warmup ""
expect_field llm-7b .spec.scaling.minReplicas 1
expect_field llm-7b .spec.scaling.tolerance 0.1
expect_field llm-7b .spec.scaling.evaluationIntervalSeconds 15
expect_field llm-7b .spec.warmup.requests 3
expect_field llm-7b .spec.warmup.concurrency 1
expect_field llm-7b .spec.warmup.timeoutSeconds 600
expect_field llm-7b .spec.warmup.requestTimeoutSeconds 60
expect_field llm-7b .spec.warmup.maxAttempts 3
expect_field llm-7b .spec.warmup.body.max_tokens 16
expect_field mistral .spec.resources.gpu.count 1
expect_field resnet .spec.resources.gpu.sharing mig
expect_field resnet .spec.resources.cpu 2
expect_field embedder .spec.metricsEndpoint.path /metrics
expect_field embedder .spec.scaling.metricsSource.prometheus.timeoutSeconds 5
expect_field full .spec.scheduling.preferCachedNodes false
expect_field sleepy .spec.scaling.minReplicas 0
expect_field sleepy .spec.scaling.scaleToZero.idleSeconds 300
expect_field sleepy .spec.scaling.scaleToZero.maxPendingRequests 100
expect_field sleepy .spec.scaling.scaleToZero.activationTimeoutSeconds 120

# Every field of the full manifest comes back as it was sent: none pruned.
kc create --dry-run=client -o json -f "$good/full.yaml" >"$tmp/sent.json" 2>&1
kc -n "$ns" get kis full -o json >"$tmp/stored.json" 2>&1
out=$(python3 - "$tmp/sent.json" "$tmp/stored.json" <<'PY' 2>&1
import json, sys
sent, stored = (json.load(open(p))["spec"] for p in sys.argv[1:3])
def diff(a, b, path):
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return [path]
        return [d for k in a for d in diff(a[k], b.get(k), path + "." + k)]
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return [path]
        return [d for i, x in enumerate(a) for d in diff(x, b[i], "%s[%d]" % (path, i))]
    return [] if a == b else [path]
d = diff(sent, stored, "spec")
print("missing or changed: " + ", ".join(d) if d else "all kept")
PY
)
expect_match "$out" '^all kept$' "full: every field is stored as sent"

# --- bad manifests: refused with the message they name -------------------------

nbad=0
for f in $(refused crd); do
	want=$(sed -n 's/^# expect: //p' "$f" | head -1)
	name=refused/${f##*/}
	if [ -z "$want" ]; then
		fail "$name has no '# expect:' line"
		continue
	fi
	out=$(kc -n "$ns" apply -f "$f" 2>&1)
	code=$?
	if [ "$code" -eq 0 ]; then
		fail "$name was accepted: $out"
	elif grep -qF -- "$want" <<<"$out"; then
		pass "$name is refused: $want"
	else
		fail "$name: '$want' not in: $out"
	fi
	nbad=$((nbad + 1))
done
[ "$nbad" -ge 12 ] && pass "$nbad bad manifests" || fail "only $nbad bad manifests"
out=$(kc -n "$ns" get kis -o name 2>&1 | wc -l)
expect_match "$out" "^$ngood\$" "only the $ngood good manifests were stored"

# Transition rule: the framework cannot change, other model fields can.
out=$(kc -n "$ns" patch kis llm-7b --type=merge -p '{"spec":{"model":{"framework":"tgi"}}}' 2>&1)
expect_code 1 $? "changing spec.model.framework is refused"
expect_match "$out" 'spec.model.framework: Invalid value: .*spec.model.framework is immutable' "the refusal names spec.model.framework"
gen=$(kc -n "$ns" get kis llm-7b -o jsonpath='{.metadata.generation}')
out=$(kc -n "$ns" patch kis llm-7b --type=merge -p '{"spec":{"model":{"revision":"v2"}}}' 2>&1)
expect_code 0 $? "changing spec.model.revision is allowed"
expect_field llm-7b .metadata.generation $((gen + 1))

# --- what kubectl shows -----------------------------------------------------------

out=$(kc explain kis.spec.scaling 2>&1)
expect_match "$out" 'Autoscaling on inference metrics' "explain kis.spec.scaling describes scaling"
expect_match "$out" 'maxReplicas.*-required-' "explain lists maxReplicas as required"
expect_match "$out" 'The fewest replicas' "explain describes minReplicas"
out=$(kc explain kis.spec.resources.gpu.sharing 2>&1)
expect_match "$out" 'time-slicing' "explain kis.spec.resources.gpu.sharing lists the modes"
out=$(kc explain kis.spec.scaling.metrics.type 2>&1)
expect_match "$out" 'TimeToFirstTokenP99' "explain kis.spec.scaling.metrics.type lists the types"

# Status subresource: the main endpoint ignores status, /status writes it.
out=$(kc -n "$ns" patch kis minimal --type=merge -p '{"status":{"replicas":99}}' 2>&1)
expect_field minimal .status.replicas ""
status='{"status":{"observedGeneration":1,"replicas":3,"readyReplicas":2,"warmReplicas":1,"desiredReplicas":3,
 "selector":"kinfer.io/inferenceservice=minimal","lastScaleTime":"2025-01-01T00:00:00Z",
 "currentMetrics":[{"type":"QueueDepth","value":4.5,"target":5}],
 "conditions":[{"type":"Ready","status":"True","reason":"AllReplicasWarm","message":"3 of 3 replicas warm",
 "observedGeneration":1,"lastTransitionTime":"2025-01-01T00:00:00Z"}]}}'
out=$(kc -n "$ns" patch kis minimal --subresource=status --type=merge -p "$status" 2>&1)
expect_code 0 $? "status is written through /status"
expect_field minimal .status.warmReplicas 1
out=$(kc -n "$ns" patch kis minimal --subresource=status --type=merge \
	-p '{"status":{"conditions":[{"type":"Ready","status":"Maybe","reason":"X","message":"","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}' 2>&1)
expect_match "$out" 'status.conditions\[0\].status: Unsupported value: "Maybe"' "a condition status outside True|False|Unknown is refused"

out=$(kc -n "$ns" get kis 2>&1)
expect_match "$out" '^NAME +MODEL +REPLICAS +READY +WARM +DESIRED +STATUS +REASON +AGE' "get kis shows the printer columns"
expect_match "$out" 'minimal +opt-125m +3 +2 +1 +3 +True +AllReplicasWarm ' "get kis shows replicas, ready, warm, desired, Ready and its reason"
out=$(kc -n "$ns" get kis -o wide 2>&1)
expect_match "$out" 'minimal +opt-125m +vllm +3 +2 +1 +3 +True +AllReplicasWarm ' "get kis -o wide adds the framework"
out=$(kc -n "$ns" wait --for=condition=Ready kis/minimal --timeout=10s 2>&1)
expect_code 0 $? "kubectl wait --for=condition=Ready works"

# Scale subresource: kubectl scale sets spec.replicas; the Scale carries the
# status selector, which is what an HPA or KEDA needs.
out=$(kc -n "$ns" scale kis/minimal --replicas=3 2>&1); expect_code 0 $? "kubectl scale kis/minimal --replicas=3"
expect_field minimal .spec.replicas 3
out=$(kc get --raw "/apis/kinfer.io/v1alpha1/namespaces/$ns/inferenceservices/minimal/scale" 2>&1)
expect_match "$out" '"spec":\{"replicas":3\},"status":\{"replicas":3,"selector":"kinfer.io/inferenceservice=minimal"\}' "the Scale shows spec, status replicas and selector"

# Names: short name, category, field selectors.
out=$(kc -n "$ns" get kinfer -o name 2>&1 | grep -c '^inferenceservice.kinfer.io/')
expect_match "$out" "^$ngood\$" "kubectl get kinfer lists the InferenceServices"
out=$(kc -n "$ns" get kis --field-selector spec.model.framework=triton -o name 2>&1)
expect_match "$out" '^inferenceservice.kinfer.io/resnet$' "field selector spec.model.framework=triton"

out=$(kc delete namespace "$ns" --wait=false 2>&1); expect_code 0 $? "namespace $ns is deleted"
summary
