#!/usr/bin/env bash
# Scenario: `kinfer-operator validate` as a CI pipeline uses it, no cluster:
# exit 0 when every InferenceService passes, 1 when any fails (each
# violation on its own line with file and line), 2 when an input cannot be
# read or parsed; folders, stdin and multi-document files.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
op=$KINFER_OPERATOR
data=$KINFER_SOURCE_DIR/tests/data/webhook
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$op" validate -f "$KINFER_SOURCE_DIR/manifests/samples" 2>&1); expect_code 0 $? "the samples pass"
expect_match "$out" 'samples/vllm.yaml:[0-9]+: llama-7b: ok \([0-9]+ defaults\)' "each object: file, line, name, ok"
out=$("$op" validate -f "$data/good" 2>&1); expect_code 0 $? "the good catalogue passes"
expect_match "$out" 'tgi-scaling.yaml:[0-9]+: tgi-scaling: warning: spec.resources.gpu.sharing: time-slicing' "warnings do not fail"

rf=()
for f in $(refused webhook); do rf+=(-f "$f"); done
out=$("$op" validate "${rf[@]}" 2>&1); expect_code 1 $? "the refused catalogue fails"
for f in $(refused webhook); do
	b=$(basename "$f")
	# The object starts after the "# refused-by:" and "# expect:" lines.
	line=$(grep -n '^apiVersion' "$f" | head -1 | cut -d: -f1)
	while IFS= read -r want; do
		expect_match "$out" "refused/$b:$line: [a-z-]+: error: $want" "$b:$line: ${want:0:50}"
	done < <(sed -n 's/^# expect: //p' "$f")
done

# Multi-document, mixed kinds, one bad object among good ones: its line.
cat > "$tmp/multi.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: serving}
---
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: fine}
spec:
  model: {name: opt-125m, uri: hf://facebook/opt-125m}
---
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: too-big}
spec:
  model: {name: llama-70b, uri: s3://m/llama-70b}
  resources:
    gpu: {count: 1, memory: 48Gi, product: NVIDIA-A100-SXM4-40GB}
YAML
out=$("$op" validate -f "$tmp/multi.yaml" 2>&1); expect_code 1 $? "one bad object fails the file"
expect_match "$out" 'multi.yaml:1: serving: skipped \(kind Namespace\)' "other kinds are skipped"
expect_match "$out" 'multi.yaml:5: fine: ok' "the good one passes, with its line"
expect_match "$out" 'multi.yaml:11: too-big: error: spec.resources.gpu.memory: 48Gi exceeds the 40Gi of NVIDIA-A100-SXM4-40GB' "the bad one fails, with its line"
out=$("$op" validate -f - < "$data/good/vllm-minimal.yaml" 2>&1); expect_code 0 $? "stdin"
expect_match "$out" '^<stdin>:[0-9]+: vllm-minimal: ok' "stdin is named <stdin>"

# Unreadable input: 2, with the reason.
out=$("$op" validate -f "$tmp/absent.yaml" 2>&1); expect_code 2 $? "a missing file exits 2"
expect_match "$out" 'absent.yaml: cannot read: No such file or directory' "the missing file is named"
printf 'kind: InferenceService\nspec: [\n' > "$tmp/broken.yaml"
out=$("$op" validate -f "$tmp/broken.yaml" 2>&1); expect_code 2 $? "malformed YAML exits 2"
expect_match "$out" 'broken.yaml: line [0-9]+' "malformed YAML: file and line"
out=$("$op" validate "${rf[@]}" -f "$tmp/absent.yaml" 2>&1); expect_code 2 $? "unreadable wins over failed"
out=$("$op" validate 2>&1); expect_code 2 $? "no -f: usage, exit 2"
out=$("$op" validate --help 2>&1); expect_code 0 $? "--help exits 0"
expect_match "$out" 'Exit status: 0 all pass, 1 any fails, 2 an input cannot be read' "--help says the exit codes"
out=$("$op" --help 2>&1)
expect_match "$out" 'validate  check InferenceService manifests offline' "validate is listed in help"
# Fields the CRD does not define (issue 12 item 19): a warning naming the
# path, exit 0; an error with --strict, exit 1; checked against the CRD.
cat > "$tmp/unknown.yaml" <<'YAML'
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: typo}
spec:
  model: {name: opt-125m, uri: hf://facebook/opt-125m}
  scalng: {maxReplicas: 3}
  scaling:
    maxReplicas: 4
    cooldownSeconds: 60
    metrics: [{type: QueueDepth, target: 5}]
YAML
out=$("$op" validate -f "$tmp/unknown.yaml" 2>&1); expect_code 0 $? "unknown fields: warnings, exit 0"
expect_match "$out" 'unknown.yaml:1: typo: warning: spec.scalng: unknown field' "the misspelt spec.scalng is named"
expect_match "$out" 'unknown.yaml:1: typo: warning: spec.scaling.cooldownSeconds: unknown field' "spec.scaling.cooldownSeconds is named"
out=$("$op" validate --strict -f "$tmp/unknown.yaml" 2>&1); expect_code 1 $? "--strict: unknown fields fail"
expect_match "$out" 'unknown.yaml:1: typo: error: spec.scalng: unknown field' "--strict: an error"
# The API server agrees: kubectl warns about (and drops) the same fields.
if [ -n "${KINFER_TEST_CLUSTER:-}" ] && [ -f "$KINFER_TEST_CLUSTER/env" ]; then
	install_crd
	sns=validate-$$
	kc create ns "$sns" >/dev/null
	out=$(kc -n "$sns" apply --dry-run=server -f "$tmp/unknown.yaml" 2>&1)
	expect_match "$out" 'unknown field "spec.scalng"' "kubectl apply warns about spec.scalng too"
	expect_match "$out" 'unknown field "spec.scaling.cooldownSeconds"' "and about spec.scaling.cooldownSeconds"
	kc delete ns "$sns" --wait=false >/dev/null 2>&1
fi
# Types, enums and bounds of the schema, offline.
cat > "$tmp/types.yaml" <<'YAML'
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: types}
spec:
  model: {name: opt-125m, uri: hf://facebook/opt-125m, framework: vlm}
  replicas: "3"
  scaling: {maxReplicas: 2000, metrics: [{type: QueueDepth, target: 5}]}
YAML
out=$("$op" validate -f "$tmp/types.yaml" 2>&1); expect_code 1 $? "schema violations fail"
expect_match "$out" 'spec.model.framework: Unsupported value: "vlm"' "an enum violation is named"
expect_match "$out" 'spec.replicas: Invalid value: "string": must be of type integer' "a type violation is named"
expect_match "$out" 'spec.scaling.maxReplicas: Invalid value: 2000: must be less than or equal to 1000' "a bound violation is named"
# `kinfer-operator metrics` (issue 12 item 18) on the recorded pages.
m=$KINFER_SOURCE_DIR/tests/data/metrics
out=$("$op" metrics --framework vllm -f "$m/vllm.txt" -f "$m/vllm-later.txt" --interval 15s 2>&1); expect_code 0 $? "metrics: two pages parse, exit 0"
expect_match "$out" 'KVCacheUtilization +97 +% +from vllm:kv_cache_usage_perc' "metrics: the value and the series it came from"
out=$("$op" metrics --framework triton -f "$m/triton-trtllm-23.12plus-readme-sample.prom" -o json 2>&1); expect_code 0 $? "metrics -o json exits 0"
expect_match "$out" '"QueueDepth": \{' "metrics -o json: per type"
expect_match "$out" '"missing": "a rate needs two pages' "metrics -o json: a rate needs two pages"
out=$(printf 'tgi_queue_size 3\nbroken{a="b} 1\n' | "$op" metrics --framework tgi -f - 2>&1); expect_code 1 $? "metrics: a page that does not parse exits 1"
expect_match "$out" '^<stdin>:2: ' "metrics: FILE:LINE of the parse error"
out=$("$op" metrics --framework vllm -f "$m/vllm.txt" -f "$m/vllm-later.txt" 2>&1); expect_code 2 $? "metrics: two pages without --interval is a usage error"
out=$("$op" metrics --framework onnx -f "$m/vllm.txt" 2>&1); expect_code 2 $? "metrics: an unknown framework is a usage error"
out=$("$op" metrics --help 2>&1); expect_code 0 $? "metrics --help exits 0"
summary
