#!/usr/bin/env bash
# bench_reconcile: apply N InferenceServices (default 1000) to a fresh local
# control plane with kinfer-operator running, and report the time until
# every one has its Deployment and a status whose observedGeneration
# matches, and the API requests kinfer spent per object. Prints
# "name value unit" lines; asserts nothing.
#   tests/bench/bench_reconcile.sh [N] [OPERATOR_BINARY]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-1000}
op=${2:-$root/build-bench/kinfer-operator}
qps=${BENCH_QPS:-200}
[ -x "$op" ] || { cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
	cmake --build "$root/build-bench" -j "$(nproc)" --target kinfer-operator >/dev/null; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/kinfer-bench.XXXXXX")
op_pid=
cleanup() {
	[ -n "$op_pid" ] && kill -TERM "$op_pid" 2>/dev/null && wait "$op_pid" 2>/dev/null
	bash "$root/tests/cluster/down.sh" "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
bash "$root/tests/cluster/up.sh" "$dir" 2>/dev/null
set -a; . "$dir/env"; set +a
k() { "$BIN/kubectl" "$@"; }
# Room for one CPU-only pod per service: more fake nodes.
for i in $(seq 0 9); do bash "$root/tests/cluster/add-gpu-node.sh" "$dir" "kwok-cpu-$i" Tesla-T4 1 15360 >/dev/null 2>&1 || true; done
k apply --server-side -f "$root/crds/inferenceservice.yaml" >/dev/null
k wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=60s >/dev/null
k create ns bench >/dev/null
"$op" run --kubeconfig "$KUBECONFIG" --http-addr 127.0.0.1:0 --leader-elect=false \
	--kube-api-qps "$qps" --kube-api-burst "$((qps * 2))" 2>"$dir/op.log" &
op_pid=$!
for _ in $(seq 1 100); do grep -q 'controller started' "$dir/op.log" && break; sleep 0.1; done
port=$(sed -n 's/.*msg="serving health and metrics".* port=\([0-9]*\).*/\1/p' "$dir/op.log" | head -1)
requests() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^kinfer_api_requests_total\{/ { s += $2 } END { print s + 0 }'; }
# Requests by verb, "verb=count ..." (to see where they go).
by_verb() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^kinfer_api_requests_total\{/ {
	v = $0; sub(/.*verb="/, "", v); sub(/".*/, "", v); s[v] += $2
	c = $0; sub(/.*code="/, "", c); sub(/".*/, "", c); if (c != "200" && c != "201") s[v "_" c] += $2 }
	END { for (v in s) printf "%s=%d ", v, s[v] }'; }
# verb_of "verb=count ..." VERB: the count of VERB (0 when absent).
verb_of() { local kv; for kv in $1; do [ "${kv%%=*}" = "$2" ] && { echo "${kv#*=}"; return; }; done; echo 0; }
# The API server's own count of one kind of request kinfer alone makes:
# PATCH of inferenceservices/status, PATCH of pods (warm-up condition).
server_count() { k get --raw /metrics | awk -v verb="$1" -v res="$2" -v sub_="$3" '/^apiserver_request_total\{/ &&
	index($0, "verb=\"" verb "\"") && index($0, "resource=\"" res "\"") && index($0, "subresource=\"" sub_ "\"") { s += $2 }
	END { print s + 0 }'; }
writes() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^kinfer_api_requests_total\{verb="(apply|patch|create|update)"/ { s += $2 } END { print s + 0 }'; }

for i in $(seq 1 "$n"); do
	printf -- '---\napiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: m%04d, namespace: bench}\nspec:\n  model: {name: m, uri: "s3://m/%d"}\n  resources: {gpu: {count: 0}, cpu: 100m, memory: 256Mi}\n' "$i" "$i"
done > "$dir/all.yaml"
r0=$(requests) w0=$(writes) v0=$(by_verb)
sp0=$(server_count PATCH inferenceservices status)
t0=$(date +%s.%N)
k apply --server-side -f "$dir/all.yaml" >/dev/null
t_applied=$(date +%s.%N)
done_count() {
	k -n bench get kis -o jsonpath='{range .items[*]}{.status.observedGeneration}{"\n"}{end}' | grep -c '^1$' || true
}
deploys() { k -n bench get deploy --no-headers 2>/dev/null | wc -l; }
# BENCH_TIMELINE=FILE: one line per poll, "seconds_after_last_apply
# observed deployments requests queue_depth", to see the shape of the tail.
depth() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^kinfer_workqueue_depth\{name="inferenceservice"/ { print $2 }'; }
timeline=${BENCH_TIMELINE:-/dev/null}
# Polls of 10,000 objects take seconds: bounded in time too (BENCH_TIMEOUT
# seconds after the last apply, default 600); what is still missing then
# is printed (reconcile_missing_*).
limit=$(awk -v t="$t_applied" -v l="${BENCH_TIMEOUT:-600}" 'BEGIN { printf "%d", t + l }')
dc=0 dp=0
for _ in $(seq 1 600); do
	[ "$(date +%s)" -lt "$limit" ] || break
	dc=$(done_count) dp=$(deploys)
	awk -v t="$(date +%s.%N)" -v ta="$t_applied" -v d="$dc" -v p="$dp" -v r="$(requests)" -v q="$(depth)" \
		'BEGIN { printf "%.1f %d %d %d %s\n", t - ta, d, p, r, q }' >>"$timeline"
	[ "$dc" -ge "$n" ] && [ "$dp" -ge "$n" ] && break
	sleep 0.5
done
t1=$(date +%s.%N)
# BENCH_METRICS=FILE: the operator's /metrics page at this moment.
[ -n "${BENCH_METRICS:-}" ] && curl -s "http://127.0.0.1:$port/metrics" >"$BENCH_METRICS"
echo "reconcile_missing_observed $((n - dc)) count"
echo "reconcile_missing_deployments $((n - dp)) count"
sleep 5   # let pods settle and count what the steady state costs
r1=$(requests) w1=$(writes) v1=$(by_verb)
sp1=$(server_count PATCH inferenceservices status)
awk -v n="$n" -v t0="$t0" -v ta="$t_applied" -v t1="$t1" -v r0="$r0" -v r1="$r1" -v w0="$w0" -v w1="$w1" -v q="$qps" 'BEGIN {
	printf "reconcile_services %d count\n", n
	printf "reconcile_kubectl_apply_seconds %.1f s\n", ta - t0
	printf "reconcile_all_observed_seconds %.1f s\n", t1 - t0
	printf "reconcile_after_last_apply_seconds %.1f s\n", t1 - ta
	printf "reconcile_throughput %.1f services/s\n", n / (t1 - t0)
	printf "reconcile_api_requests_per_service %.2f requests\n", (r1 - r0) / n
	printf "reconcile_api_writes_per_service %.2f requests\n", (w1 - w0) / n
	printf "reconcile_client_qps_limit %d qps\n", q
}'
echo "reconcile_operator_rss $(awk '/VmRSS/ { print $2 }' /proc/$op_pid/status) kB"
# The operator's CPU (user + system, from its start) and its reconciles.
awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "reconcile_operator_cpu %.1f s\n", ($12 + $13) / hz }' "/proc/$op_pid/stat"
curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$n" '/^kinfer_reconcile_total\{controller="inferenceservice"/ { s += $2 }
	END { printf "reconcile_reconciles_per_service %.1f count\n", s / n }'
# Per verb, per service (before -> after the run, so the LIST/WATCH of the
# start are not counted).
for kv in $v1; do
	verb=${kv%%=*} after=${kv#*=} before=$(verb_of "$v0" "${kv%%=*}")
	awk -v v="$verb" -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "reconcile_api_%s_per_service %.2f requests\n", v, (a - b) / n }'
done
# Mean latency of each verb's requests (the whole run).
curl -s "http://127.0.0.1:$port/metrics" | awk '/^kinfer_api_request_duration_seconds_(sum|count)\{/ {
	v = $0; sub(/.*verb="/, "", v); sub(/".*/, "", v)
	if (index($0, "_sum{")) s[v] += $2; else c[v] += $2 }
	END { for (v in c) if (c[v] > 0) printf "reconcile_api_%s_mean_latency %.1f ms\n", v, s[v] / c[v] * 1000 }'
awk -v a="$sp1" -v b="$sp0" -v n="$n" 'BEGIN { printf "reconcile_api_status_patch_per_service %.2f requests\n", (a - b) / n }'
# The InferenceService controller's share: the pods' bindings are the
# placement's (one per pod it places, not per service).
awk -v r="$((r1 - r0))" -v b="$(( $(verb_of "$v1" bind) - $(verb_of "$v0" bind) ))" -v n="$n" \
	'BEGIN { printf "reconcile_api_requests_per_service_without_bindings %.2f requests\n", (r - b) / n }'
# Until the operator is quiet (no request for 5 s; at most 60 s): what the
# pods' progress after the window costs (status patches, Events, bindings).
rq=$r1
for _ in $(seq 1 12); do
	sleep 5
	rn=$(requests)
	[ "$rn" = "$rq" ] && break
	rq=$rn
done
vq=$(by_verb)
awk -v r="$((rq - r0))" -v b="$(( $(verb_of "$vq" bind) - $(verb_of "$v0" bind) ))" -v n="$n" 'BEGIN {
	printf "reconcile_api_requests_per_service_until_quiet %.2f requests\n", r / n
	printf "reconcile_api_requests_per_service_until_quiet_without_bindings %.2f requests\n", (r - b) / n }'
r2=$(requests) v2=$(by_verb)
sleep 10
echo "reconcile_steady_state_requests_in_10s $(( $(requests) - r2 )) requests"
v3=$(by_verb)
for kv in $v3; do
	verb=${kv%%=*} after=${kv#*=} before=$(verb_of "$v2" "${kv%%=*}")
	[ "$after" != "$before" ] && echo "reconcile_steady_state_${verb}_in_10s $((after - before)) requests"
done
true
