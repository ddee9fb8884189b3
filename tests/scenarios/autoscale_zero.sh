#!/usr/bin/env bash
# Scenario (issue 12, item 7): the autoscaler reads the current size from
# the workload (the Deployment's replicas, as the HPA reads /scale). A
# service scaled to 0 with `kubectl scale kis --replicas=0` and then given
# spec.scaling (minReplicas 1) comes back to minReplicas and autoscales:
# ScalingActive True from its metrics (the old code answered
# ScalingDisabled with 0 forever). And minReplicas 0 with only per-pod
# metrics is refused at apply time with the reason.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin autoscalezero
cond() { j kis/svc "{.status.conditions[?(@.type==\"$1\")].$2}"; }

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 50ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

apply_isvc svc <<YAML
  replicas: 1
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1}
YAML
warm() { [ "$(j kis/svc '{.status.warmReplicas}')" = "$1" ]; }
if wait_until 60 warm 1; then pass "1 pod warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
kc -n "$ns" scale kis/svc --replicas=0 >/dev/null
at0() { [ "$(j deploy/svc '{.spec.replicas}')" = 0 ]; }
if wait_until 40 at0; then pass "kubectl scale --replicas=0: the Deployment goes to 0"; else fail "Deployment at $(j deploy/svc '{.spec.replicas}')"; fi

kc -n "$ns" patch kis svc --type=merge -p '{"spec":{"scaling":{"minReplicas":1,"maxReplicas":3,"evaluationIntervalSeconds":2,"metrics":[{"type":"QueueDepth","target":5}]}}}' >/dev/null
at1() { [ "$(j deploy/svc '{.spec.replicas}')" = 1 ]; }
if wait_until 40 at1; then pass "with spec.scaling (minReplicas 1) the Deployment comes back to 1"; else fail "Deployment at $(j deploy/svc '{.spec.replicas}'), ScalingActive $(cond ScalingActive reason): $(cond ScalingActive message)"; fi
active() { [ "$(cond ScalingActive status)" = True ]; }
if wait_until 60 active; then pass "ScalingActive True ($(cond ScalingActive reason))"; else fail "ScalingActive $(cond ScalingActive status) $(cond ScalingActive reason): $(cond ScalingActive message)"; fi
expect_match "$(j kis/svc '{.status.desiredReplicas}')" '^1$' "status.desiredReplicas 1"
expect_match "$(cond ScalingActive reason)" '^ValidMetricFound$' "never ScalingDisabled at the end"

# minReplicas 0 with only per-pod metrics: refused by the API server's
# webhook path is out of scope here (no webhook in this scenario); the
# same rule, offline.
out=$("$KINFER_OPERATOR" validate -f "$refused_dir/zero-min-per-pod-metrics.yaml" 2>&1)
expect_code 1 $? "validate refuses minReplicas 0 with only per-pod metrics"
expect_match "$out" 'spec.scaling.minReplicas: 0 needs a metric that has a value with no pods running' "naming the field and why"
summary
