#!/usr/bin/env bash
# Scenario: the pause annotations and the fallback (issue 17) on the local
# control plane, next to autoscale.sh: the model-server simulator
# answers on the pods' IPs, kinfer scales on QueueDepth every 3 s.
#
#   kubectl annotate kinfer.io/paused-replicas=2
#           -> the Deployment goes to 2 and stays there while idle,
#              ScalingActive False Paused; the annotation removed, the
#              autoscaler resumes (ScalingActive True, back to 1);
#   kubectl annotate kinfer.io/paused-scale-out=true, then a burst
#           -> no replica added, ScalingLimited True ScaleOutPaused;
#              removed, the burst scales up;
#   the metrics source killed (the simulator)
#           -> held for failureThreshold evaluations (FailedGetMetrics),
#              then the fallback's 3 replicas, ScalingActive False
#              Fallback, status.scaling.failures, a Fallback Event; the
#              source back, ScalingActive True again.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin autoscale-controls
bin=$sim_bin
lg_pid=
INTERVAL=3 WINDOW=6

deploy_replicas() { j deploy/svc '{.spec.replicas}'; }
cond() { j kis/svc "{.status.conditions[?(@.type==\"$1\")].$2}"; }
ev() { kc -n "$ns" get events --field-selector "involvedObject.name=svc,reason=$1" -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null; }
sim_args=(--load-seconds 1s --cold-requests 0 --latency-ms 400ms --capacity 1)
# held N WANT: the Deployment keeps WANT replicas for N seconds.
held() {
	local t=$SECONDS r
	while [ $((SECONDS - t)) -lt "$1" ]; do
		r=$(deploy_replicas)
		[ "$r" = "$2" ] || { echo "no: $r after $((SECONDS - t)) s"; return; }
		sleep 0.5
	done
	echo yes
}

install_crd
kc create ns "$ns" >/dev/null
start_sim "${sim_args[@]}"
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
apply_isvc svc <<YAML
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, requestTimeoutSeconds: 20}
  drain: {timeoutSeconds: 10}
  scaling:
    minReplicas: 1
    maxReplicas: 4
    evaluationIntervalSeconds: $INTERVAL
    metrics:
      - {type: QueueDepth, target: 2}
    fallback: {failureThreshold: 3, replicas: 3, behavior: static}
    behavior:
      scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: $INTERVAL}]}
      scaleDown:
        stabilizationWindowSeconds: $WINDOW
        policies: [{type: Pods, value: 1, periodSeconds: $INTERVAL}]
YAML

warm1() { [ "$(j kis/svc '{.status.warmReplicas}')" = 1 ]; }
if wait_until 60 warm1; then pass "1 replica warm (minReplicas)"; else fail "not warm: $(j kis/svc '{.status}')"; fi
active() { [ "$(cond ScalingActive status)" = True ]; }
if wait_until 30 active; then pass "ScalingActive True ($(cond ScalingActive reason))"; else fail "ScalingActive: $(cond ScalingActive message)"; fi
expect_match "$(j kis/svc '{.status.scaling.minReplicas} {.status.scaling.maxReplicas}')" '^1 4$' \
	"status.scaling shows the bounds in force (1..4)"

# --- paused-replicas: pinned at 2 while idle, then resumed. ------------------
kc -n "$ns" annotate kis/svc kinfer.io/paused-replicas=2 >/dev/null
t0=$SECONDS
at2() { [ "$(deploy_replicas)" = 2 ]; }
if wait_until 15 at2; then pass "paused-replicas=2: the Deployment at 2 after $((SECONDS - t0)) s"; else fail "paused-replicas: Deployment at $(deploy_replicas)"; fi
paused() { [ "$(cond ScalingActive status)" = False ] && [ "$(cond ScalingActive reason)" = Paused ]; }
if wait_until 10 paused; then pass "ScalingActive False Paused: $(cond ScalingActive message)"; else fail "ScalingActive $(cond ScalingActive status) $(cond ScalingActive reason)"; fi
expect_match "$(j kis/svc '{.status.desiredReplicas}')" '^2$' "status.desiredReplicas 2 while paused"
expect_match "$(held $((WINDOW + 3 * INTERVAL)) 2)" '^yes$' \
	"idle but paused: held at 2 for $((WINDOW + 3 * INTERVAL)) s (the autoscaler alone would go to 1)"
expect_match "$(ev SuccessfulRescale | grep -c 'paused-replicas annotation')" '^[1-9]' "the rescale Event names the annotation"
kc -n "$ns" annotate kis/svc kinfer.io/paused-replicas- >/dev/null
t1=$SECONDS
if wait_until 10 active; then pass "annotation removed: ScalingActive True again after $((SECONDS - t1)) s"; else fail "still $(cond ScalingActive reason)"; fi
at1() { [ "$(deploy_replicas)" = 1 ]; }
if wait_until 60 at1; then pass "resumed: idle, back to 1 after $((SECONDS - t1)) s (through the drain)"; else fail "not back to 1: $(deploy_replicas)"; fi
warm1b() { [ "$(j kis/svc '{.status.warmReplicas}')" = 1 ] && [ "$(j kis/svc '{.status.replicas}')" = 1 ]; }
wait_until 30 warm1b || true

# --- paused-scale-out: a burst adds nothing, then does. ------------------------
kc -n "$ns" annotate kis/svc kinfer.io/paused-scale-out=true >/dev/null
"$bin/kinfer-loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
	--selector kinfer.io/service=svc --rps 8 --duration 60s --timeout 60s >"$tmp/lg.out" 2>"$tmp/lg.err" &
lg_pid=$!
track_pid "$lg_pid"
limited() { [ "$(cond ScalingLimited status)" = True ] && [ "$(cond ScalingLimited reason)" = ScaleOutPaused ]; }
if wait_until 15 limited; then pass "burst with paused-scale-out: ScalingLimited True ScaleOutPaused"; else fail "ScalingLimited $(cond ScalingLimited status) $(cond ScalingLimited reason)"; fi
expect_match "$(held $((4 * INTERVAL)) 1)" '^yes$' "paused-scale-out: still 1 replica under the burst for $((4 * INTERVAL)) s"
kc -n "$ns" annotate kis/svc kinfer.io/paused-scale-out- >/dev/null
t2=$SECONDS
grew() { [ "$(deploy_replicas)" -gt 1 ] 2>/dev/null; }
if wait_until 15 grew; then pass "annotation removed: scaled up to $(deploy_replicas) after $((SECONDS - t2)) s"; else fail "no scale-up after removing paused-scale-out"; fi
stop_pid "$lg_pid"; lg_pid=

# --- fallback: the metrics source killed. -------------------------------------
stop_pid "$sim_pid"; sim_pid=
t3=$SECONDS
failing() { [ "$(cond ScalingActive reason)" = FailedGetMetrics ] || [ "$(cond ScalingActive reason)" = FailedGetPodsMetric ]; }
if wait_until 15 failing; then pass "source down: ScalingActive False $(cond ScalingActive reason) first (held)"; else fail "not held first: $(cond ScalingActive reason)"; fi
fellback() { [ "$(cond ScalingActive reason)" = Fallback ]; }
if wait_until 30 fellback; then
	pass "after failureThreshold 3: ScalingActive False Fallback after $((SECONDS - t3)) s: $(cond ScalingActive message)"
else
	fail "no fallback: $(cond ScalingActive reason) $(cond ScalingActive message)"
fi
at3() { [ "$(deploy_replicas)" = 3 ]; }
if wait_until 30 at3; then pass "fallback: the Deployment at 3 replicas (fallback.replicas)"; else fail "fallback: Deployment at $(deploy_replicas)"; fi
expect_match "$(j kis/svc '{.status.scaling.failures}')" '^([3-9]|[1-9][0-9]+)$' "status.scaling.failures counts the evaluations without metrics"
has_fb_event() { ev Fallback | grep -q 'fallback to 3 replicas'; }
if wait_until 10 has_fb_event; then pass "Event Fallback: $(ev Fallback | head -1)"; else fail "no Fallback Event: $(kc -n "$ns" get events -o jsonpath='{.items[*].reason}')"; fi
expect_match "$(held $((3 * INTERVAL)) 3)" '^yes$' "fallback holds 3 while the source is down"
start_sim "${sim_args[@]}"
t4=$SECONDS
if wait_until 30 active; then pass "source back: ScalingActive True after $((SECONDS - t4)) s"; else fail "still $(cond ScalingActive reason)"; fi
nofail() { [ -z "$(j kis/svc '{.status.scaling.failures}')" ]; }
if wait_until 10 nofail; then pass "status.scaling.failures cleared"; else fail "failures $(j kis/svc '{.status.scaling.failures}')"; fi
summary
