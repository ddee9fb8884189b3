#!/usr/bin/env bash
# The activator process's forward to real pods, on the real node: the
# activator run on this machine (KINFER_HOST_ACTIVATOR: the ThreadSanitizer
# build when the build has one, as tests/run.sh configures it; else this
# build's binary) against the node's API server, in front of an
# InferenceService of the simulator image that scales to zero, the
# in-cluster operator (installed from its image) scaling it. The pods'
# addresses are real (198.18.0.0/16, routed to the node), so NAME-private's
# EndpointSlice lists them: what scenario.activator cannot reach on the
# local control plane (loopback pod IPs) and node_scale_to_zero checks only
# through the image's build.
#
#   1. warm: plain and streamed requests forwarded to the pod, answered by
#      the model (its own request counter goes up by as many), the stream
#      with nothing of the activator's in it (no ": model starting": the
#      first list of the service is waited for before a stream is held);
#   1b. a client that leaves in the middle of a stream (the model between
#      two tokens, 20 s apart): the forward to the pod is closed at once,
#      so the model stops (its own count of cancelled requests, nothing
#      running), counted in kinfer_activator_client_cancels_total;
#   1c. the pod goes silent in the middle of a stream (an nftables table of
#      the scenario drops the packets of the activator's connection to it,
#      as when its node vanishes): the activator gives the connection up
#      within about 30 s (TCP keepalive, user timeout) and ends the client's
#      stream as broken, where it used to wait for ever;
#   2. at zero: 4 requests (one streamed) held, the activation annotation
#      written (at once, every 5 s, once more when the pod takes them: the
#      idle clock starts then; no write fails), the pod warms, all 4 forwarded
#      and answered 200 by the model, none before the pod was warm (the
#      model's own count of traffic before warm-up stays 0);
#   3. SIGTERM with a stream in flight (its next token 20 s away): a new
#      request 1 s later is still taken and answered (--shutdown-delay);
#      the stream has --shutdown-timeout, then it is cut and the activator
#      exits 0; no error and no sanitizer report in its log;
#   4. a rollout of the in-cluster kinfer-activator Deployment (its image)
#      while clients keep sending to a service at zero through its
#      ClusterIP: no request refused. Each old pod takes requests for
#      --shutdown-delay after its SIGTERM, while kube-proxy still sends it
#      some; it used to close its port at once (10 of 635 refused here, 1,
#      8 and 4 in three longer rollouts of ~3,300 requests each).
. "$(dirname "$0")/node_lib.sh"
begin node-act
act_bin=${KINFER_HOST_ACTIVATOR:-}
[ -x "$act_bin" ] || { echo "KINFER_HOST_ACTIVATOR is not an executable: '$act_bin'"; exit 1; }
now_ms() { date +%s%3N; }

install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
kis_s2z "$ns" llm 2 10 120 20000
warm() { [ "$(j kis/llm '{.status.warmReplicas}')" = 1 ]; }
wait_until 150 warm; expect_code 0 $? "llm starts with one warm replica"

# The activator on this machine: loopback, any free port.
start_activator "$act_bin" "$tmp/act.log"
port=$act_port http_port=$act_http_port
expect_match "$port $http_port" '^[1-9][0-9]* [1-9][0-9]*$' "the activator serves on this machine ($act_bin)"

# ask OUT [stream]: one request through the activator, in the background;
# OUT gets "CODE TOTAL_S", OUT.body the answer.
ask() {
	local accept=application/json body='{"model":"llm","prompt":"hi","max_tokens":4}'
	[ "${2:-}" = stream ] && accept=text/event-stream body='{"model":"llm","prompt":"hi","stream":true}'
	curl -s -N -m 150 -o "$1.body" -H "Host: llm.$ns.svc.cluster.local:8000" -H "Accept: $accept" \
		-H 'Content-Type: application/json' -d "$body" -w '%{http_code} %{time_total}\n' \
		"http://127.0.0.1:$port/v1/completions" >"$1" 2>/dev/null
}
pod_ip() { kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{.items[0].status.podIP}' 2>/dev/null; }
act_metric() { # NAME [LABEL=VALUE]: its value for service llm (0 when absent)
	curl -s --max-time 2 "http://127.0.0.1:$http_port/metrics" |
		awk -v n="$1" -v l="${2:-service=\"llm\"}" 'index($0, n "{") == 1 && index($0, "service=\"llm\"") && index($0, l) { s += $2 } END { print s + 0 }'
}

# --- 1. warm: forwarded to the pod ----------------------------------------------
ip=$(pod_ip)
expect_match "$ip" '^198\.18\.' "the warm pod has a real address ($ip)"
ok0=$(sim_metric "$ip" vllm:request_success_total)
pids=()
for i in 1 2 3 4; do ask "$tmp/w$i" & pids+=($!); done
ask "$tmp/ws" stream & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
codes=$(cat "$tmp"/w1 "$tmp"/w2 "$tmp"/w3 "$tmp"/w4 "$tmp"/ws | awk '{ printf "%s ", $1 }')
expect_match "$codes" '^200 200 200 200 200 $' "warm: 5 requests forwarded, 200 ($codes)"
expect_match "$(cat "$tmp/w1.body")" '"choices":\[\{"text":" simulated"' "the model's answer comes back ($(head -c 100 "$tmp/w1.body"))"
st=$(cat "$tmp/ws.body")
expect_match "$st" 'data: \{"choices"' "the stream carries the model's events"
expect_match "$(grep -c 'data: \[DONE\]' <<<"$st")" '^1$' "and ends with data: [DONE]"
expect_match "$(grep -c '^: model starting' <<<"$st")" '^0$' "no ': model starting' for a warm service: the model's own stream"
ok1=$(sim_metric "$ip" vllm:request_success_total)
expect_match "$((ok1 - ok0))" '^5$' "the pod's own count of answered requests went up by 5 ($ok0 -> $ok1)"

# --- 1b. a client leaves mid-stream: the model stops -----------------------------
# stream OUT MAX_TOKENS MAX_S: a streamed request through the activator, in
# the background; OUT gets curl's exit code, OUT.body the events.
stream() {
	curl -s -N -m "$3" -o "$1.body" -H "Host: llm.$ns.svc.cluster.local:8000" -H 'Accept: text/event-stream' \
		-H 'Content-Type: application/json' -d "{\"model\":\"llm\",\"prompt\":\"hi\",\"stream\":true,\"max_tokens\":$2}" \
		"http://127.0.0.1:$port/v1/completions" 2>/dev/null
	echo $? >"$1"
}
first_token() { grep -q '^data: {"choices"' "$1.body" 2>/dev/null; }
c0=$(sim_metric "$ip" kinfer_sim_requests_cancelled_total)
stream "$tmp/left" 5 3
t_left=$(now_ms)
expect_match "$(cat "$tmp/left") $(grep -c '^data: {"choices"' "$tmp/left.body")" '^28 1$' "a client reads the first token of 5 (the next 20 s later) and leaves after 3 s"
stopped() { [ "$(sim_metric "$ip" kinfer_sim_requests_cancelled_total)" = "$((c0 + 1))" ] && [ "$(sim_metric "$ip" vllm:num_requests_running)" = 0 ]; }
wait_until 5 stopped
r=$? stop_ms=$(($(now_ms) - t_left))
expect_code 0 $r "the model stopped that request $stop_ms ms later (its cancelled count $c0 -> $(sim_metric "$ip" kinfer_sim_requests_cancelled_total), running $(sim_metric "$ip" vllm:num_requests_running)): the activator closed the forward"
expect_match "$(act_metric kinfer_activator_client_cancels_total)" '^1$' "kinfer_activator_client_cancels_total 1"

# --- 1c. the pod goes silent mid-stream: the stream ends, not hangs ---------------
command -v nft >/dev/null || { fail "nft is not installed (tests/deps.sh installs nftables)"; summary; exit 1; }
err0=$(act_metric kinfer_activator_upstream_errors_total)
# The activator's connections to the pod, by local port.
pod_conns() { ss -tnpH state established "( dport = :8000 )" 2>/dev/null | grep "pid=$act_pid," | awk -v ip="$ip" '{ n = split($3, a, ":"); if (index($4, ip ":") == 1) print a[n] }' | sort; }
before=$(pod_conns)
stream "$tmp/silent" 5 150 &
spid=$!
wait_until 10 first_token "$tmp/silent"
expect_code 0 $? "a stream through the activator has its first token"
sport=$(comm -13 <(echo "$before") <(pod_conns) | paste -sd, -)
table=kinfer-silent-pod-$$
at_exit "nft delete table inet $table 2>/dev/null"
if [ -n "$sport" ] && nft add table inet "$table" &&
	nft add chain inet "$table" out '{ type filter hook output priority 0; }' &&
	nft add chain inet "$table" in '{ type filter hook input priority 0; }' &&
	nft add rule inet "$table" out ip daddr "$ip" tcp sport "{ $sport }" tcp dport 8000 drop &&
	nft add rule inet "$table" in ip saddr "$ip" tcp sport 8000 tcp dport "{ $sport }" drop; then
	pass "the stream's connection to the pod ($ip:8000 from port $sport) silenced"
else
	fail "could not silence the activator's connection (port '$sport')"
fi
t_silent=$(now_ms)
for _ in $(seq 1 90); do kill -0 "$spid" 2>/dev/null || break; sleep 1; done
wait "$spid"
took=$(($(now_ms) - t_silent))
nft delete table inet "$table" 2>/dev/null
expect_match "$(cat "$tmp/silent") $([ "$took" -le 60000 ] && echo in-time)" '^18 in-time$' \
	"the client's stream ended as broken (curl exit 18, it was 28: waited its 150 s) $took ms after the pod went silent"
expect_match "$(act_metric kinfer_activator_upstream_errors_total)" "^$((err0 + 1))\$" "kinfer_activator_upstream_errors_total +1"
expect_match "$(grep -c "the pod's answer broke off" "$tmp/act.log")" '^1$' "the activator logs that the pod's answer broke off ($(grep "the pod's answer broke off" "$tmp/act.log" | grep -o 'error=.*' | head -c 80))"
# The pod learns when its retransmission meets the closed socket (a RST):
# nothing of kinfer's to check, but the next step wants it idle.
idle() { [ "$(sim_metric "$ip" vllm:num_requests_running)" = 0 ]; }
wait_until 120 idle || echo "note: the pod still counts a request running"
echo "figure: a client that left mid-stream freed the model in $stop_ms ms; a stream whose pod went silent ended $took ms later"

# --- 2. at zero: held, activated, forwarded --------------------------------------
at_zero() {
	[ "$(j deploy/llm '{.spec.replicas}')" = 0 ] && pods_total "$ns" kinfer.io/service=llm 0
}
wait_until 120 at_zero; expect_code 0 $? "idle: drained to 0, no pod left"
act0=$(act_metric kinfer_activator_activations_total 'result="ok"')
err1=$(act_metric kinfer_activator_upstream_errors_total)
t0=$(now_ms)
pids=()
for i in 1 2 3; do ask "$tmp/z$i" & pids+=($!); done
ask "$tmp/zs" stream & pids+=($!)
held4() { [ "$(act_metric kinfer_activator_held_requests)" = 4 ]; }
wait_until 10 held4; expect_code 0 $? "4 requests held at zero (kinfer_activator_held_requests 4)"
wrote() { [ -n "$(j kis/llm '{.metadata.annotations.kinfer\.io/activation-requested}')" ]; }
wait_until 10 wrote; expect_code 0 $? "the activation annotation is written"
for p in "${pids[@]}"; do wait "$p"; done
t1=$(now_ms)
codes=$(cat "$tmp"/z1 "$tmp"/z2 "$tmp"/z3 "$tmp"/zs | awk '{ printf "%s ", $1 }')
expect_match "$codes" '^200 200 200 200 $' "all 4 forwarded once the pod is warm: 200 ($codes, $((t1 - t0)) ms)"
expect_match "$(cat "$tmp/z1.body")" '"choices":\[\{"text":" simulated"' "answered by the model"
st=$(cat "$tmp/zs.body")
expect_match "$st" '^: model starting' "the held stream got ': model starting' at once"
expect_match "$st" 'data: \[DONE\]' "then the model's stream to its end"
ip=$(pod_ip)
expect_match "$(sim_metric "$ip" kinfer_sim_traffic_before_warm_total)" '^0$' "no request reached the new pod ($ip) before it was warm"
expect_match "$(sim_metric "$ip" vllm:request_success_total)" '^[4-9]$|^[1-9][0-9]+$' "the new pod answered them (with its warm-up requests)"
expect_match "$(act_metric kinfer_activator_held_requests) $(($(act_metric kinfer_activator_upstream_errors_total) - err1)) $(act_metric kinfer_activator_timeouts_total)" \
	'^0 0 0$' "held 0, no new upstream error, timeouts 0"
acts=$(($(act_metric kinfer_activator_activations_total 'result="ok"') - act0))
most=$((2 + (t1 - t0) / 5000 + 1))
expect_match "$([ "$acts" -ge 2 ] && [ "$acts" -le "$most" ] && echo yes) $(act_metric kinfer_activator_activations_total 'result="error"')" '^yes 0$' \
	"the activation written $acts times in $((t1 - t0)) ms (at once, every 5 s, once at the release: 2-$most), no write failed"
last=$(j kis/llm '{.metadata.annotations.kinfer\.io/activation-requested}')
last_ms=$(date -d "$last" +%s%3N 2>/dev/null || echo 0)
expect_match "$(awk -v l="$last_ms" -v t="$t1" 'BEGIN { d = t - l; if (d < 0) d = -d; print (d <= 2000) ? "yes" : "no" }')" '^yes$' \
	"its last time ($last) is when the pod took the held requests: the idle clock starts then"

# --- 3. SIGTERM, a stream in flight ------------------------------------------------
# The stream (the next token 20 s away) has --shutdown-timeout (5 s), then
# it is cut and the activator exits.
stream "$tmp/last" 5 150 &
spid=$!
wait_until 10 first_token "$tmp/last"
t_term=$(now_ms)
kill -TERM "$act_pid"
# A request sent after the signal (kube-proxy still routes to a pod being
# deleted for a moment) is still taken and answered by the model.
sleep 1
ask "$tmp/after_term"
expect_match "$(cut -d' ' -f1 "$tmp/after_term") $(head -c 200 "$tmp/after_term.body")" '^200 .*"choices":\[\{"text":" simulated"' \
	"a request 1 s after SIGTERM (within --shutdown-delay) is forwarded and answered"
wait "$act_pid"
r=$? stop_ms=$(($(now_ms) - t_term))
expect_code 0 $r "the activator stops on SIGTERM with exit code 0"
expect_match "$([ "$stop_ms" -le 8000 ] && echo in-time)" '^in-time$' "... $stop_ms ms after it, a stream in flight cut after --shutdown-timeout (5 s), not waited for"
untrack_pid "$act_pid"
wait "$spid"
expect_match "$(cat "$tmp/last")" '^18$' "that client's stream ends broken (curl exit 18)"
expect_match "$(grep -c 'level=error' "$tmp/act.log")" '^0$' "no error in the activator's log"
echo "figure: at zero, 4 held requests answered $((t1 - t0)) ms after they were sent (scale-up, pod start, model load 2 s, warm-up)"

# --- 4. a rollout of the activator under traffic -----------------------------------
# A service kept at zero (its pod can never be placed): its ClusterIP leads
# to the in-cluster activator pods. Two clients send back to back through
# kube-proxy from the node, with no Host of a service, so the activator
# answers each at once (400): any answer is a request taken, 000 one refused
# or reset. They run from 2 s before the rollout until 3 s after it is done.
cat <<YAML | kc -n "$ns" apply -f - >/dev/null
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: parked}
spec:
  model: {name: parked, uri: "file:///models/parked", framework: vllm}
  image: ${SIM_IMAGE#docker.io/}
  port: 8000
  replicas: 0
  resources: {gpu: {count: 1}, cpu: 10m, memory: 32Mi}
  scaling:
    minReplicas: 0
    maxReplicas: 1
    metrics: [{type: QueueDepth, target: 100}]
    scaleToZero: {idleSeconds: 10, activationTimeoutSeconds: 2}
  scheduling: {nodeSelector: {kinfer.io/no-such-node: "true"}}
YAML
to_activator() { [ "$(kc -n "$ns" get endpointslices -l kubernetes.io/service-name=parked -o jsonpath='{.items[*].ports[0].port}' 2>/dev/null)" = 8012 ]; }
wait_until 30 to_activator; expect_code 0 $? "the service at zero routes to the activator pods (port 8012)"
pip=$(kc -n "$ns" get svc parked -o jsonpath='{.spec.clusterIP}')
# Before the first request kube-proxy must have that slice: the clients
# used to start before it did (ci52: 179 of 1,229 refused; run again, 117
# of 956, every one of them before the rollout began).
wait_until 30 routed "$pip" 8000; expect_code 0 $? "kube-proxy routes the ClusterIP $pip to the activators"
rm -f "$tmp/roll.stop"
roll_client() { # OUT: one code a line until $tmp/roll.stop, 120 s at most
	local end=$((SECONDS + 120))
	while [ ! -e "$tmp/roll.stop" ] && [ "$SECONDS" -lt "$end" ]; do
		in_node curl -s -o /dev/null -m 5 -w '%{http_code}\n' -H 'Content-Type: application/json' \
			-d '{"prompt":"hi"}' "http://$pip:8000/v1/completions"
	done >"$1"
}
roll_client "$tmp/roll1" & rc1=$!
roll_client "$tmp/roll2" & rc2=$!
track_pid "$rc1" TERM; track_pid "$rc2" TERM
sleep 2
kc -n kinfer-system rollout restart deploy/kinfer-activator >/dev/null
kc -n kinfer-system rollout status deploy/kinfer-activator --timeout=120s >/dev/null
expect_code 0 $? "the kinfer-activator Deployment rolls out"
sleep 3
touch "$tmp/roll.stop"
wait "$rc1" "$rc2"; untrack_pid "$rc1"; untrack_pid "$rc2"
total=$(cat "$tmp/roll1" "$tmp/roll2" | wc -l)
refused=$(cat "$tmp/roll1" "$tmp/roll2" | grep -cvx 400) || true
expect_match "$total $refused" '^[1-9][0-9]{2,} 0$' "$total requests across the activator's rollout, $refused not answered by an activator ($(cat "$tmp/roll1" "$tmp/roll2" | sort | uniq -c | tr -s ' \n' ' '))"
summary
