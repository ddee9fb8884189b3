#!/usr/bin/env bash
# Scenario: autoscaling on inference metrics, end to end. The model-server
# simulator answers on the pods' IPs (vLLM's metric names); kinfer-loadgen
# sends a burst; the operator scales on QueueDepth.
#
#   burst   -> the first scale-up within one evaluation period, an Event
#              naming the metric, ScalingActive True with the value in
#              status.currentMetrics, up to maxReplicas (ScalingLimited);
#   source down (the simulator, or Prometheus) while the load is gone
#           -> replicas held well past the stabilization window, never
#              dropped to min, ScalingActive False saying why;
#   source back, quiet
#           -> step-wise scale-down (one replica per step) after the window,
#              each step through the drain (Draining Events), down to min.
#
# Usage: autoscale.sh [Pods|Prometheus]. With Prometheus, a real
# Prometheus server (Debian's) scrapes the pods (file_sd targets written
# from the pods' IPs, labels namespace and pod) and kinfer queries it; the
# InferenceService also scales on a Custom PromQL metric.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
source=${1:-Pods}
begin autoscale-$(echo "$source" | tr 'A-Z' 'a-z')
bin=$sim_bin
lg_pid= prom_pid=
# Scale-down steps are further apart than a drain takes (5 s at least),
# so each step shows on the Deployment.
INTERVAL=3 WINDOW=12 STEP=8

deploy_replicas() { j deploy/svc '{.spec.replicas}'; }
cond() { j kis/svc "{.status.conditions[?(@.type==\"$1\")].$2}"; }
metric_value() { j kis/svc "{.status.currentMetrics[?(@.type==\"$1\")].value}"; }
# One request at a time per pod, 400 ms each: 2.5 requests/s per pod.
sim_args=(--load-seconds 1s --cold-requests 0 --latency-ms 400ms --capacity 1)

install_crd
kc create ns "$ns" >/dev/null
start_sim "${sim_args[@]}"

source_yaml=
extra_metric=
if [ "$source" = Prometheus ]; then
	command -v prometheus >/dev/null || { echo "prometheus is not installed (tests/deps.sh installs it)"; exit 1; }
	port=$(free_port)
	cat >"$tmp/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: pods
    scrape_timeout: 1s
    file_sd_configs: [{files: ['$tmp/targets.json'], refresh_interval: 1s}]
YAML
	echo '[]' >"$tmp/targets.json"
	prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
		--web.listen-address="127.0.0.1:$port" --log.level=warn 2>"$tmp/prometheus.log" &
	prom_pid=$!
	track_pid "$prom_pid"
	# The service discovery: the pods' IPs as targets, with the labels
	# kube-prometheus' relabelling gives (namespace, pod). Bounded: the
	# scenario's whole time.
	(for _ in $(seq 1 1200); do
		kc -n "$ns" get pods -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}' 2>/dev/null |
			awk -v ns="$ns" 'BEGIN { printf "[" } $2 != "" { printf "%s{\"targets\":[\"%s:8000\"],\"labels\":{\"namespace\":\"%s\",\"pod\":\"%s\"}}", n++ ? "," : "", $2, ns, $1 } END { print "]" }' >"$tmp/targets.json.new" &&
			mv "$tmp/targets.json.new" "$tmp/targets.json"
		sleep 0.5
	done) &
	track_pid $!
	up() { curl -sf --max-time 1 "http://127.0.0.1:$port/-/ready" >/dev/null; }
	if wait_until 30 up; then pass "Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') is up on 127.0.0.1:$port"; else fail "Prometheus did not start: $(cat "$tmp/prometheus.log")"; exit 1; fi
	source_yaml="metricsSource: {type: Prometheus, prometheus: {url: 'http://127.0.0.1:$port', timeoutSeconds: 2}}"
	extra_metric="- {type: Custom, target: 2, query: 'avg(vllm:num_requests_waiting{namespace=\"$ns\"})'}"
fi

# The Prometheus source only reaches what the admin lists, Custom PromQL
# only when allowed (issue 12 item 16): both flags set as an admin would.
prom_flags=()
[ "$source" = Prometheus ] && prom_flags=(--prometheus-allowed-urls "http://127.0.0.1:$port" --allow-custom-promql)
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" "${prom_flags[@]}" || exit 1
apply_isvc svc <<YAML
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, requestTimeoutSeconds: 20}
  drain: {timeoutSeconds: 30}
  scaling:
    minReplicas: 1
    maxReplicas: 4
    evaluationIntervalSeconds: $INTERVAL
    metrics:
      - {type: QueueDepth, target: 2}
      $extra_metric
    behavior:
      scaleDown:
        stabilizationWindowSeconds: $WINDOW
        policies: [{type: Pods, value: 1, periodSeconds: $STEP}]
    $source_yaml
YAML

warm1() { [ "$(j kis/svc '{.status.warmReplicas}')" = 1 ]; }
if wait_until 60 warm1; then pass "1 replica warm (minReplicas)"; else fail "not warm: $(j kis/svc '{.status}')"; fi
active() { [ "$(cond ScalingActive status)" = True ] && [ -n "$(metric_value QueueDepth)" ]; }
if wait_until 30 active; then
	pass "ScalingActive True ($(cond ScalingActive reason)), QueueDepth $(metric_value QueueDepth) in status.currentMetrics"
else
	fail "ScalingActive: $(cond ScalingActive status) $(cond ScalingActive message); metrics $(j kis/svc '{.status.currentMetrics}')"
fi
expect_match "$(j kis/svc '{.status.currentMetrics[?(@.type=="QueueDepth")].target}')" '^2$' "status.currentMetrics carries the target"

# Burst: 8 requests/s against 2.5/s per replica.
"$bin/kinfer-loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
	--selector kinfer.io/service=svc --rps 8 --duration 40s --timeout 60s >"$tmp/lg.out" 2>"$tmp/lg.err" &
lg_pid=$!
track_pid "$lg_pid"
t0=$SECONDS
grew() { [ "$(deploy_replicas)" -gt 1 ] 2>/dev/null; }
# One evaluation period, plus the Prometheus scrape interval and the
# time for the queue to build (a second at 8/s).
budget=$((INTERVAL + 2))
[ "$source" = Prometheus ] && budget=$((budget + 2))
if wait_until 20 grew; then
	dt=$((SECONDS - t0))
	if [ "$dt" -le "$budget" ]; then pass "burst: scaled up after ${dt} s (one evaluation period is ${INTERVAL} s)"; else fail "burst: first scale-up took ${dt} s, more than ${budget} s"; fi
else
	fail "no scale-up: $(j kis/svc '{.status}')"
fi
ev() { kc -n "$ns" get events --field-selector "involvedObject.name=svc,reason=$1" -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null; }
has_up_event() { ev SuccessfulRescale | grep -q 'QueueDepth .* above target'; }
if wait_until 10 has_up_event; then pass "Event SuccessfulRescale: $(ev SuccessfulRescale | head -1)"; else fail "no SuccessfulRescale Event naming QueueDepth: $(ev SuccessfulRescale)"; fi
at_max() { [ "$(deploy_replicas)" = 4 ]; }
if wait_until 40 at_max; then pass "up to maxReplicas 4 after $((SECONDS - t0)) s"; else fail "did not reach 4: $(deploy_replicas)"; fi
expect_match "$(j kis/svc '{.status.desiredReplicas}')" '^4$' "status.desiredReplicas 4"
expect_match "$(j kis/svc '{.status.lastScaleTime}')" '^20[0-9-]+T[0-9:]+Z$' "status.lastScaleTime set"
limited() { [ "$(cond ScalingLimited status)" = True ]; }
if wait_until 10 limited; then pass "ScalingLimited True under load ($(cond ScalingLimited reason))"; else fail "ScalingLimited: $(cond ScalingLimited status) $(cond ScalingLimited reason)"; fi

# The source goes down as the load stops: hold, never fall to min.
stop_pid "$lg_pid"; lg_pid=
if [ "$source" = Prometheus ]; then stop_pid "$prom_pid"; prom_pid=; else stop_pid "$sim_pid"; sim_pid=; fi
t1=$SECONDS
inactive() { [ "$(cond ScalingActive status)" = False ]; }
if wait_until 15 inactive; then
	pass "source down: ScalingActive False, $(cond ScalingActive reason): $(cond ScalingActive message)"
else
	fail "ScalingActive still $(cond ScalingActive status): $(cond ScalingActive message)"
fi
if [ "$source" = Prometheus ]; then want='Prometheus at http://127.0.0.1'; else want='no pod could be scraped'; fi
expect_match "$(cond ScalingActive message)" "$want" "the condition says why ($want)"
held=yes
while [ $((SECONDS - t1)) -lt $((WINDOW + 3 * INTERVAL)) ]; do
	r=$(deploy_replicas)
	[ "$r" = 4 ] || { held="no: $r after $((SECONDS - t1)) s"; break; }
	sleep 1
done
expect_match "$held" '^yes$' "replicas held at 4 for $((WINDOW + 3 * INTERVAL)) s with the source down (window ${WINDOW} s)"
expect_match "$(j kis/svc '{.status.desiredReplicas}')" '^4$' "status.desiredReplicas still 4"

# Back, and quiet: one replica per step after the window, through the drain.
if [ "$source" = Prometheus ]; then
	prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
		--web.listen-address="127.0.0.1:$port" --log.level=warn 2>>"$tmp/prometheus.log" &
	prom_pid=$!
	track_pid "$prom_pid"
else
	start_sim "${sim_args[@]}"
fi
t2=$SECONDS
trace= dtrace=
last=4 dlast=4
while [ $((SECONDS - t2)) -lt 120 ]; do
	r=$(deploy_replicas) d=$(j kis/svc '{.status.desiredReplicas}')
	if [ -n "$r" ] && [ "$r" != "$last" ]; then trace="$trace $last->$r@$((SECONDS - t2))s"; last=$r; fi
	if [ -n "$d" ] && [ "$d" != "$dlast" ]; then dtrace="$dtrace $dlast->$d@$((SECONDS - t2))s"; dlast=$d; fi
	[ "$r" = 1 ] && break
	sleep 0.5
done
if [ "$last" = 1 ]; then pass "quiet: scaled down to minReplicas 1:$trace"; else fail "scale-down stopped at $last:$trace ($(cond ScalingActive message))"; fi
steps_ok=yes
for s in $trace $dtrace; do
	from=${s%%->*} rest=${s#*->}; to=${rest%%@*}
	[ $((from - to)) -eq 1 ] || steps_ok="no: $s"
done
expect_match "$steps_ok" '^yes$' "one replica per step (decisions:$dtrace)"
first=${dtrace# }; first=${first%%s*}; first=${first#*@}
[ "${first:-0}" -ge $((WINDOW - INTERVAL)) ] && pass "the first step down came after the stabilization window (${first} s, window ${WINDOW} s)" ||
	fail "scaled down ${first} s after the source came back, inside the ${WINDOW} s window"
expect_match "$(cond ScalingActive status)" '^True$' "ScalingActive True again once the source is back"
downs=$(ev SuccessfulRescale | grep -c 'below target')
[ "$downs" -ge 3 ] && pass "$downs scale-down Events ('all metrics below target')" || fail "scale-down Events: $(ev SuccessfulRescale)"
drains=$(ev Drained | wc -l)
[ "$drains" -ge 1 ] && pass "the scale-downs went through the drain ($drains Drained Events)" || fail "no Drained Event: $(kc -n "$ns" get events -o jsonpath='{.items[*].reason}')"
stable() { [ "$(j kis/svc '{.status.desiredReplicas}')" = 1 ]; }
wait_until 10 stable && pass "status.desiredReplicas 1" || fail "desiredReplicas $(j kis/svc '{.status.desiredReplicas}')"

if [ "$source" = Prometheus ]; then
	# A bearer token from a Secret: missing -> held and said; there -> on.
	kc -n "$ns" patch kis/svc --type merge -p '{"spec":{"scaling":{"metricsSource":{"prometheus":{"bearerTokenSecretRef":{"name":"prom-token","key":"token"}}}}}}' >/dev/null
	no_secret() { [ "$(cond ScalingActive status)" = False ] && cond ScalingActive message | grep -q 'cannot read Secret'; }
	if wait_until 15 no_secret; then pass "missing token Secret: ScalingActive False: $(cond ScalingActive message | cut -c1-120)"; else fail "missing Secret not reported: $(cond ScalingActive message)"; fi
	kc -n "$ns" create secret generic prom-token --from-literal=token=s3cr3t-t0ken >/dev/null
	back_on() { [ "$(cond ScalingActive status)" = True ]; }
	if wait_until 90 back_on; then pass "token Secret created: ScalingActive True again"; else fail "still $(cond ScalingActive message)"; fi
	if grep -q 's3cr3t-t0ken' "$tmp/op.log"; then fail "the token appears in the operator's log"; else pass "the token never appears in the log"; fi
	# A URL the admin did not list is never queried: said in status, naming the flag.
	kc -n "$ns" patch kis/svc --type merge -p "{\"spec\":{\"scaling\":{\"metricsSource\":{\"prometheus\":{\"url\":\"http://127.0.0.2:$port\"}}}}}" >/dev/null
	refused() { [ "$(cond ScalingActive status)" = False ] && cond ScalingActive message | grep -q -- '--prometheus-allowed-urls'; }
	if wait_until 30 refused; then pass "an unlisted Prometheus URL: ScalingActive False: $(cond ScalingActive message | cut -c1-140)"; else fail "unlisted URL not refused: $(cond ScalingActive status) $(cond ScalingActive message)"; fi
fi
summary
