#!/usr/bin/env bash
# Scenario (issue 16, the activator process): `kinfer-operator activator`
# run on this machine against the real API server, in front of a service
# scaled to zero. Also run with the ThreadSanitizer build
# (scenario.tsan_activator): its connection threads, held-request table,
# poller and the API writes together.
#
#   requests at zero      -> held (up to maxPendingRequests; the next one
#                            503 with Retry-After at once), the activation
#                            annotation written, the operator scales 0 -> 1;
#                            a streamed one gets ': model starting' comments;
#                            a client that goes away frees its place;
#   activationTimeoutSeconds -> 503 naming why (a stream: event: error);
#   bad Host / unknown    -> 400 / 404 naming why, at once;
#   SIGTERM               -> not ready, requests taken for --shutdown-delay,
#                            exit code 0.
# Not here: the forward to a warm pod. On the local control plane pod IPs
# are loopback addresses, which no EndpointSlice may hold (the API server's
# validation), so NAME-private never lists one; scenario.node_scale_to_zero
# checks the forward on the real node, through the ClusterIP.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin act
deploy_replicas() { j deploy/svc '{.spec.replicas}'; }
at() { [ "$(deploy_replicas)" = "$1" ]; }

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 2s --cold-requests 0 --latency-ms 50ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1

apply_isvc svc <<YAML
  model: {name: m, uri: s3://m}
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1}
  drain: {timeoutSeconds: 5}
  scaling:
    minReplicas: 0
    maxReplicas: 2
    evaluationIntervalSeconds: 20
    metrics: [{type: QueueDepth, target: 5}]
    scaleToZero: {idleSeconds: 3, maxPendingRequests: 3, activationTimeoutSeconds: 6}
YAML
if wait_until 90 at 0; then pass "idle: scaled to 0"; else fail "Deployment at $(deploy_replicas)"; fi
gone() { [ -z "$(kc -n "$ns" get pods -l kinfer.io/service=svc -o name 2>/dev/null)" ]; }
wait_until 30 gone || fail "pods still there: $(kc -n "$ns" get pods -o name)"

# The activator, as the manifests run it but on loopback and any free port.
start_activator "$KINFER_OPERATOR" "$tmp/act.log"
port=$act_port http_port=$act_http_port
expect_match "$port $http_port" '^[1-9][0-9]* [1-9][0-9]*$' "the activator serves (its log names the ports bound)"
ask() { # NAME HOST [CURL ARGS...]: "CODE BODY" into $tmp/NAME
	local name=$1 host=$2
	shift 2
	curl -s --max-time 120 -o "$tmp/$name.body" -w '%{http_code}' -H "Host: $host" \
		-H 'Content-Type: application/json' "$@" "http://127.0.0.1:$port/v1/completions" \
		>"$tmp/$name.code" 2>/dev/null
}

# Bad requests are answered at once.
ask bad 127.0.0.1 -d '{"prompt":"x"}'
expect_match "$(cat "$tmp/bad.code") $(cat "$tmp/bad.body")" '^400 .*' "a Host that is an IP address: 400 ($(head -c 120 "$tmp/bad.body"))"
ask unknown "nope.$ns" -d '{"prompt":"x"}'
expect_match "$(cat "$tmp/unknown.code")" '^404$' "an InferenceService that does not exist: 404"

metric() { # NAME: its value for service svc (0 when absent)
	curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" |
		awk -v n="$1" 'index($0, n "{") == 1 && index($0, "service=\"svc\"") { s += $2 } END { print s + 0 }'
}
# Three requests held at zero (maxPendingRequests 3), one of them streamed;
# then a fourth is refused at once.
t0=$(date +%s%3N)
pids=()
for i in 1 2; do
	ask "held$i" "svc.$ns.svc.cluster.local" -d "{\"prompt\":\"req $i\",\"max_tokens\":4}" &
	pids+=($!)
done
ask stream "svc.$ns" -H 'Accept: text/event-stream' -N -d '{"prompt":"s","stream":true}' &
pids+=($!)
held3() { [ "$(metric kinfer_activator_held_requests)" = 3 ]; }
if wait_until 5 held3; then pass "3 requests held at zero (kinfer_activator_held_requests 3)"; else fail "held: $(metric kinfer_activator_held_requests)"; fi
ask over "svc.$ns" -D "$tmp/over.headers" -d '{"prompt":"x"}'
expect_match "$(cat "$tmp/over.code") $(cat "$tmp/over.body")" '^503 .*3 requests are already held for it \(maxPendingRequests\)' "the 4th: 503 at once, naming maxPendingRequests"
expect_match "$(tr -d '\r' <"$tmp/over.headers")" 'Retry-After: 5' "with Retry-After: 5"
expect_match "$(tr -d '\r' <"$tmp/over.headers")" '[Cc]onnection: close' "and Connection: close (a kept connection would stay on the activator after the Service moves to the pods)"
wrote() { [ -n "$(j kis/svc '{.metadata.annotations.kinfer\.io/activation-requested}')" ]; }
if wait_until 5 wrote; then pass "the activator wrote kinfer.io/activation-requested ($(j kis/svc '{.metadata.annotations.kinfer\.io/activation-requested}'))"; else fail "no activation annotation"; fi
if wait_until 10 at 1; then pass "the operator scaled the Deployment 0 -> 1"; else fail "Deployment at $(deploy_replicas)"; fi

# A client that goes away while held: its place is freed.
for p in "${pids[@]}"; do wait "$p"; done
t1=$(date +%s%3N)
codes=$(cat "$tmp"/held{1,2}.code "$tmp/stream.code" | tr -d '\n ')
expect_match "$codes" '^503503200$' "at activationTimeoutSeconds (6 s): 503 for the two plain ones, the stream had its 200 ($((t1 - t0)) ms)"
expect_match "$(cat "$tmp/held1.body")" 'activation timed out after 6 s: the model is still starting \(1 replicas, none ready yet\)' "the 503 says why ($(head -c 160 "$tmp/held1.body"))"
st=$(cat "$tmp/stream.body")
expect_match "$st" '^: model starting' "the stream starts at once with ': model starting'"
expect_match "$(grep -c '^: model starting' "$tmp/stream.body")" '^[3-9]$' "a comment every second while held"
expect_match "$st" 'event: error' "the stream ends with event: error at the timeout"
expect_match "$(metric kinfer_activator_timeouts_total) $(metric kinfer_activator_overflow_total)" '^3 1$' "kinfer_activator_timeouts_total 3, overflow_total 1"
ask late "svc.$ns" --max-time 1 -d '{"prompt":"x"}'
expect_match "$(cat "$tmp/late.code")" '^000$' "a client giving up after 1 s (held, no answer yet)"
freed() { [ "$(metric kinfer_activator_held_requests)" = 0 ]; }
if wait_until 3 freed; then pass "its place is freed (held 0)"; else fail "held: $(metric kinfer_activator_held_requests)"; fi

# SIGTERM: not ready at once, new requests still taken for --shutdown-delay
# (5 s: kube-proxy still sends them until the operator has taken the pod
# out of the Services; before, an idle activator closed its port at once
# and refused them), then a clean stop, the port closed.
t_term=$(date +%s%3N)
kill -TERM "$act_pid"
ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$http_port/readyz")
sleep 1
ask draining "nope.$ns" -d '{"prompt":"x"}'
expect_match "$(cat "$tmp/draining.code") $ready" '^404 503$' "1 s after SIGTERM, not ready (503) and a request still answered (404 for no such service)"
wait "$act_pid"
expect_code 0 $? "the activator stops on SIGTERM with exit code 0 ($(($(date +%s%3N) - t_term)) ms after it)"
ask closed "nope.$ns" -d '{"prompt":"x"}'
expect_match "$(cat "$tmp/closed.code")" '^000$' "then its port is closed"
untrack_pid "$act_pid"
expect_match "$(grep -c 'level=error' "$tmp/act.log" "$tmp/op.log" | awk -F: '{ s += $2 } END { print s }')" '^0$' "no errors in the activator's and the operator's logs"
summary
