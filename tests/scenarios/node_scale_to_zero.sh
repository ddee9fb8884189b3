#!/usr/bin/env bash
# Scale to zero and back through the activator (issue 16), on the real node:
# kinfer installed from its image (operator and activator Deployments), the
# model simulator in containers, every request through the Service's
# ClusterIP from the node's network namespace, with the Host a client of
# the cluster DNS sends (NAME.NAMESPACE.svc.cluster.local).
#
#   1. idle -> drained to 0: the public Service's EndpointSlice names the
#      activator's pods;
#   2. a burst of 20 at zero: all 20 answered 200, the Deployment's scale-up
#      write within 1 s of the first request, the slowest first byte within
#      the cold start (activation -> first warm pod, the ScaledFromZero
#      Event) + 2 s; then the Service points at the pod again;
#   3. 151 requests (one a stream) against maxPendingRequests 50 per
#      activator replica: exactly each replica's overflow gets 503 with
#      Retry-After (counted by the activators themselves), the rest 200,
#      nothing hangs; the stream gets ": model starting" every 5 s while
#      held, then the model's events;
#   4. the activator replica holding requests is killed: its clients get
#      an error at once, the other replica's clients their answers, and the
#      next requests are served;
#   5. the operator is down at zero: held requests end at
#      activationTimeoutSeconds with a 503 that says so;
#   6. the same burst against a plain Deployment at 0 replicas: how many
#      fail (a figure, not an assertion);
#   7. a client that keeps its connections (HTTP keep-alive) across a cold
#      start: its requests at zero go through an activator, and once the
#      Service names the pod none of them does (each answer of the
#      activator closes its connection), and none fails.
. "$(dirname "$0")/node_lib.sh"
ns=node-s2z-$$
tmp=$(mktemp -d)
bg=()
cleanup() {
	local p
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${bg[@]}"; do wait "$p" 2>/dev/null; done
	kc -n kinfer-system scale deploy/kinfer-operator --replicas=2 >/dev/null 2>&1
	kc delete namespace "$ns" --wait=false >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now_ms() { date +%s%3N; }

# req SVC OUT [stream]: one request through the ClusterIP, in the
# background; OUT gets "CODE TTFB TOTAL EXIT END_MS" and OUT.h the headers.
req() {
	local ip=$(cluster_ip "$ns" "$1") accept=application/json body='{"model":"m","prompt":"hi"}'
	[ "${3:-}" = stream ] && accept=text/event-stream body='{"model":"m","prompt":"hi","stream":true}'
	(
		out=$(in_node curl -s -m 150 -o "$2.body" -D "$2.h" -H "Host: $1.$ns.svc.cluster.local:8000" \
			-H "Accept: $accept" -H 'Content-Type: application/json' -d "$body" \
			-w '%{http_code} %{time_starttransfer} %{time_total}' "http://$ip:8000/v1/completions")
		echo "$out $? $(now_ms)" >"$2"
	) &
	bg+=("$!")
}
# burst SVC N DIR: N requests at once.
burst() { local i; mkdir -p "$3"; for ((i = 0; i < $2; i++)); do req "$1" "$3/$i"; done; }
# wait_done DIR N SECONDS: every result file written.
done_count() { ls "$1" 2>/dev/null | grep -c '^[0-9]*$'; }
# results DIR: the result lines (files named by number only).
results() { local f; for f in "$1"/*; do [[ ${f##*/} =~ ^[0-9]+$ ]] && cat "$f"; done; }
n_done() { [ "$(done_count "$1")" -ge "$2" ]; }
wait_done() { wait_until "$3" n_done "$1" "$2"; }
codes() { results "$1" | awk '{print $1}' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'; }
count_code() { results "$1" | awk -v c="$2" '$1 == c' | wc -l; }
at_zero() {
	[ "$(kc -n "$ns" get deploy "$1" -o jsonpath='{.spec.replicas}' 2>/dev/null)" = 0 ] &&
		pods_total "$ns" "kinfer.io/service=$1" 0
}
routed_to() { kc -n "$ns" get endpointslice "$1-kinfer" -o jsonpath='{.metadata.labels.kinfer\.io/route}' 2>/dev/null; }
routed() { [ "$(routed_to "$1")" = "$2" ]; }
activator_ips() { kc -n kinfer-system get pods -l app.kubernetes.io/component=activator -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}'; }
# act_metric IP NAME SVC: a series of one activator pod for service SVC.
act_metric() {
	in_node curl -s --max-time 3 "http://$1:8080/metrics" |
		awk -v n="$2" -v m="namespace=\"$ns\",service=\"$3\"" 'index($1, n "{") == 1 && index($1, m) { s += $2 } END { print s + 0 }'
}
# act_sum NAME SVC: that series summed over the activator pods.
act_sum() { local a t=0; for a in $(activator_ips); do t=$((t + $(act_metric "$a" "$1" "$2"))); done; echo "$t"; }

install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc -n kinfer-system rollout status deploy/kinfer-activator --timeout=120s >/dev/null
expect_code 0 $? "the activator Deployment rolls out"
expect_match "$(activator_ips | grep -c '^198\.18\.')" '^2$' "two activator pods on the real node"
kc create namespace "$ns" >/dev/null
kis_s2z "$ns" llm 2 100 25
kis_s2z "$ns" slow 20 50 120
plain "$ns" plain 0
wait_until 30 kc -n "$ns" get svc llm slow -o name >/dev/null 2>&1
out=$(kc -n "$ns" get svc llm llm-private -o jsonpath='{range .items[*]}{.metadata.name}={.spec.selector}{" "}{end}')
expect_match "$out" '^llm= llm-private=\{"kinfer.io/service":"llm"\} $' "public Service llm has no selector, llm-private has the pods' ($out)"

# --- 1. idle -> drained to 0 ---------------------------------------------------
# (A new service with scaleToZero starts at one replica, then idles.)
warm() { [ "$(kc -n "$ns" get kis "$1" -o jsonpath='{.status.warmReplicas}' 2>/dev/null)" = 1 ]; }
wait_until 150 warm llm; expect_code 0 $? "llm starts with one warm replica"
t=$SECONDS
wait_until 120 at_zero llm; expect_code 0 $? "llm: idle -> drained to 0 replicas, no pod left"
drained_s=$((SECONDS - t))
wait_until 120 at_zero slow; expect_code 0 $? "slow: idle -> drained to 0"
out=$(kc -n "$ns" get kis llm -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}')
expect_match "$out" '^True ScaledToZero$' "Ready True, reason ScaledToZero ($out)"
wait_until 10 routed llm activator
eps=$(kc -n "$ns" get endpointslice llm-kinfer -o jsonpath='{range .endpoints[*]}{.addresses[0]}{"\n"}{end}' | sort | tr '\n' ' ')
expect_match "$eps" "^$(activator_ips | sort | tr '\n' ' ')\$" "at zero, the EndpointSlice llm-kinfer names the two activator pods ($eps)"

# --- 6. (first, as the baseline) plain Deployment at 0 --------------------------
burst plain 20 "$tmp/plain"
wait_done "$tmp/plain" 20 60
plain_failed=$((20 - $(count_code "$tmp/plain" 200)))

# --- 2. burst of 20 at zero -----------------------------------------------------
# (a bounded watch: timeout ends kubectl whatever happens)
(set -a; . "$KINFER_TEST_CLUSTER/env"; set +a
 exec timeout 100 "$BIN/kubectl" -n "$ns" get deploy llm -w -o jsonpath='{.spec.replicas}{"\n"}' 2>/dev/null) |
	while IFS= read -r l; do echo "$(now_ms) $l"; done >"$tmp/llm.watch" &
watch_pid=$!
bg+=("$watch_pid")
sleep 1
t0=$(now_ms)
burst llm 20 "$tmp/llm"
wait_done "$tmp/llm" 20 90; expect_code 0 $? "all 20 requests ended"
ok=$(count_code "$tmp/llm" 200)
expect_match "$ok" '^20$' "20 of 20 requests at zero answered 200 ($(codes "$tmp/llm"))"
up=$(awk '$2 >= 1 { print $1; exit }' "$tmp/llm.watch")
write_ms=$(( ${up:-0} - t0 ))
expect_match "$([ -n "$up" ] && [ "$write_ms" -le 1000 ] && echo yes)" '^yes$' "the Deployment's scale-up write follows the first request within 1 s (${write_ms} ms)"
# The Event follows the status write that saw the pod warm (asynchronous).
cold_event() { kc -n "$ns" get events --field-selector reason=ScaledFromZero,involvedObject.name=llm -o jsonpath='{.items[-1:].note}{.items[-1:].message}' 2>/dev/null |
	sed -n 's/.*warm \([0-9.]*\) s after.*/\1/p'; }
has_cold() { [ -n "$(cold_event)" ]; }
wait_until 15 has_cold
cold=$(cold_event)
max_ttfb=$(results "$tmp/llm" | awk '$1 == 200 { if ($2 > m) m = $2 } END { printf "%.3f", m }')
min_ttfb=$(results "$tmp/llm" | awk '$1 == 200 { if (m == "" || $2 < m) m = $2 } END { printf "%.3f", m }')
expect_match "${cold:-x}" '^[0-9]+(\.[0-9]+)?$' "Event ScaledFromZero gives the cold start (${cold:-none} s)"
expect_match "$(awk -v a="$max_ttfb" -v b="${cold:-0}" 'BEGIN { print (a <= b + 2) ? "yes" : "no" }')" '^yes$' \
	"slowest first byte ${max_ttfb} s <= cold start (model load 2 s + warm-up: ${cold:-?} s) + 2 s"
wait_until 20 routed llm pods
expect_code 0 $? "warm again: the EndpointSlice names the pod, the activator leaves the path"
kill "$watch_pid" 2>/dev/null

# --- 3. 151 against maxPendingRequests 50 per activator replica -----------------
mkdir -p "$tmp/stream"
ip=$(cluster_ip "$ns" slow)
(
	in_node curl -s -N -m 150 -H "Host: slow.$ns.svc.cluster.local" -H 'Accept: text/event-stream' \
		-H 'Content-Type: application/json' -d '{"model":"m","prompt":"hi","stream":true}' \
		"http://$ip:8000/v1/completions" | while IFS= read -r l; do echo "$(now_ms) $l"; done >"$tmp/stream/out"
	echo "$(now_ms)" >"$tmp/stream/0"
) &
bg+=("$!")
s0=$(now_ms)
sleep 0.5
burst slow 150 "$tmp/slow"
wait_done "$tmp/slow" 150 150; expect_code 0 $? "all 150 requests ended (none hangs)"
wait_until 60 test -s "$tmp/stream/0"
n503=$(count_code "$tmp/slow" 503)
n200=$(count_code "$tmp/slow" 200)
ra=$(grep -il '^Retry-After: [0-9]' "$tmp"/slow/*.h 2>/dev/null | wc -l)
seen=0 over=0 want=0 per=""
for a in $(activator_ips); do
	r=$(act_metric "$a" kinfer_activator_requests_total slow)
	o=$(act_metric "$a" kinfer_activator_overflow_total slow)
	seen=$((seen + r)) over=$((over + o))
	want=$((want + (r > 50 ? r - 50 : 0)))
	per="$per $a:$r/$o"
done
expect_match "$seen" '^151$' "the activators received all 151 requests (per pod requests/overflow:$per)"
expect_match "$over" "^$want\$" "each activator refused exactly its overflow past 50 held (total $over)"
expect_match "$n503" "^$over\$" "the clients got exactly that many 503 ($n503)"
expect_match "$ra" "^$n503\$" "every 503 carries Retry-After ($ra)"
expect_match "$((n200 + n503))" '^150$' "every other request answered 200 ($(codes "$tmp/slow"))"
msg=$(cat "$tmp"/slow/*.body 2>/dev/null | grep -m1 -o 'is starting and [0-9]* requests are already held')
expect_match "${msg:-none}" 'is starting and 50 requests are already held' "the 503 says the model is starting ($msg)"
ka=$(grep -c ': model starting$' "$tmp/stream/out")
first_data=$(awk '/ data: / { print $1; exit }' "$tmp/stream/out")
last_ka=$(awk '/: model starting$/ { t = $1 } END { print t }' "$tmp/stream/out")
held_s=$(( (${first_data:-0} - s0) / 1000 ))
expect_match "$([ "$ka" -ge 3 ] && echo yes)" '^yes$' "the held stream got $ka ': model starting' comments over ${held_s} s"
expect_match "$([ -n "$first_data" ] && [ "$first_data" -gt "${last_ka:-0}" ] && echo yes)" '^yes$' "then the model's stream"
expect_match "$(grep -c 'data: \[DONE\]' "$tmp/stream/out")" '^1$' "the stream ends with data: [DONE]"

# --- 4. the activator holding requests is killed --------------------------------
wait_until 120 at_zero slow; expect_code 0 $? "slow: idle -> 0 again"
wait_until 10 routed slow activator
burst slow 10 "$tmp/kill"
victim= vheld=0
for _ in $(seq 1 40); do
	sleep 0.25
	for a in $(activator_ips); do
		h=$(act_metric "$a" kinfer_activator_held_requests slow)
		[ "$h" -gt "$vheld" ] && victim=$a vheld=$h
	done
	[ "$(act_sum kinfer_activator_held_requests slow)" -ge 10 ] && break
done
vpod=$(kc -n kinfer-system get pods -l app.kubernetes.io/component=activator -o jsonpath="{.items[?(@.status.podIP==\"$victim\")].metadata.name}")
cid=$(kc -n kinfer-system get pod "$vpod" -o jsonpath='{.status.containerStatuses[0].containerID}')
kill_ms=$(now_ms)
ctr --address "$KINFER_CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "${cid#containerd://}" >/dev/null 2>&1
expect_code 0 $? "the activator pod $vpod holding $vheld of the 10 requests is killed (SIGKILL)"
wait_done "$tmp/kill" 10 150; expect_code 0 $? "all 10 clients ended"
errs=$(results "$tmp/kill" | awk '$1 == "000"' | wc -l)
late=$(results "$tmp/kill" | awk -v k="$kill_ms" '$1 == "000" && $5 - k > 5000' | wc -l)
expect_match "$errs" "^$vheld\$" "its $vheld clients got an error (connection cut), no more ($(codes "$tmp/kill"))"
expect_match "$late" '^0$' "each within 5 s of the kill: no hang"
expect_match "$(count_code "$tmp/kill" 200)" "^$((10 - vheld))\$" "the other replica's clients got their 200"
burst slow 5 "$tmp/next"
wait_done "$tmp/next" 5 60
expect_match "$(count_code "$tmp/next" 200)" '^5$' "the next 5 requests are served ($(codes "$tmp/next"))"

# --- 5. the operator is down at zero ---------------------------------------------
wait_until 120 at_zero llm; expect_code 0 $? "llm: idle -> 0 again"
kc -n kinfer-system scale deploy/kinfer-operator --replicas=0 >/dev/null
wait_until 60 pods_total kinfer-system app.kubernetes.io/name=kinfer-operator 0
expect_code 0 $? "the operator is down (0 pods)"
t0=$(now_ms)
burst llm 5 "$tmp/down"
wait_done "$tmp/down" 5 60; expect_code 0 $? "the 5 held requests ended"
expect_match "$(count_code "$tmp/down" 503)" '^5$' "all 5 got 503 ($(codes "$tmp/down"))"
waited=$(results "$tmp/down" | awk '{ if ($3 > m) m = $3 } END { printf "%.1f", m }')
expect_match "$(awk -v w="$waited" 'BEGIN { print (w >= 24 && w <= 30) ? "yes" : "no" }')" '^yes$' "at activationTimeoutSeconds 25 (${waited} s)"
msg=$(cat "$tmp"/down/*.body | grep -m1 -o 'activation timed out after 25 s: no replica was started[^"]*')
expect_match "${msg:-none}" 'is kinfer-operator running' "the 503 says why ($msg)"
expect_match "$(grep -il '^Retry-After: [0-9]' "$tmp"/down/*.h | wc -l)" '^5$' "with Retry-After"
kc -n kinfer-system scale deploy/kinfer-operator --replicas=2 >/dev/null
kc -n kinfer-system rollout status deploy/kinfer-operator --timeout=120s >/dev/null
expect_code 0 $? "the operator is back"

# --- 7. a client that keeps its connections, across a cold start ----------------
wait_until 120 at_zero llm; expect_code 0 $? "llm: at 0 again"
wait_until 10 routed llm activator
a0=$(act_sum kinfer_activator_requests_total llm)
load_start "$tmp/ka" "$(cluster_ip "$ns" llm):8000" 40 5 "llm.$ns.svc.cluster.local:8000"; ka_pid=$started_load
bg+=("$ka_pid")
wait_until 60 routed llm pods; expect_code 0 $? "the keep-alive client's requests woke llm: the Service names the pod"
sleep 3 # the requests the activator held are answered
a1=$(act_sum kinfer_activator_requests_total llm)
sleep 10
a2=$(act_sum kinfer_activator_requests_total llm)
kill -TERM "$ka_pid" 2>/dev/null; load_wait "$ka_pid"
ka_sent=$(summary_of "$tmp/ka" sent) ka_failed=$(summary_of "$tmp/ka" failed)
expect_match "$((a1 - a0))" '^[1-9][0-9]*$' "at zero its requests went through an activator ($((a1 - a0)))"
expect_match "$((a2 - a1))" '^0$' "once the Service names the pod, none of its requests goes through an activator ($((a2 - a1)) in 10 s at 5 rps)"
expect_match "${ka_sent:-0} ${ka_failed:-x}" '^[1-9][0-9]* 0$' "none of its requests failed (${ka_failed:-?} of ${ka_sent:-?})" ||
	echo "the failed ones: $(load_failures "$tmp/ka")"

echo "figure: warm -> idle (idleSeconds 10) -> drained to 0: ${drained_s} s"
echo "figure: burst of 20 at zero: $ok ok; scale-up write ${write_ms} ms after the first request; first byte ${min_ttfb}-${max_ttfb} s; cold start ${cold:-?} s"
echo "figure: 151 against maxPendingRequests 50 per activator: $n503 x 503 (Retry-After), $n200 x 200; per activator requests/overflow:$per"
echo "figure: stream held ${held_s} s, $ka keep-alive comments"
echo "figure: activator killed holding $vheld: $errs errors, $((10 - vheld)) answered by the other"
echo "figure: operator down: 5 x 503 after ${waited} s"
echo "figure: plain Deployment at 0, burst of 20: $plain_failed failed ($(codes "$tmp/plain"))"
echo "figure: keep-alive client across a cold start: $((a1 - a0)) requests through the activators at zero, $((a2 - a1)) in the 10 s after the Service named the pod; ${ka_failed:-?} failed of ${ka_sent:-?}"
summary
