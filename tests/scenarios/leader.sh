#!/usr/bin/env bash
# Scenario: leader election between real kinfer-operator processes.
# Two replicas elect exactly one leader; SIGKILL of the leader hands over
# within the lease duration; SIGTERM exits 0 and releases the lease, so a
# standby takes over at once. Also checks /readyz, /healthz and /metrics.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin
lease=kinfer-test-$$
# The controllers watch a namespace of their own: these replicas must not
# reconcile other scenarios' objects.
args=(--leader-election-namespace default --leader-election-id "$lease" --watch-namespace "$lease")

# The controllers' caches include InferenceServices: the CRD must exist for
# the replicas to become ready.
install_crd

holder() { kc -n default get lease "$lease" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
is_leader() { [ "$(metric "$1" kinfer_leader)" = 1 ]; }
has_holder() { [ -n "$(holder)" ]; }

start_operator "$tmp/a.log" "${args[@]}" || exit 1
a_pid=$started_pid a_port=$started_port
start_operator "$tmp/b.log" "${args[@]}" || exit 1
b_pid=$started_pid b_port=$started_port

if wait_until 30 has_holder; then pass "a leader holds the Lease"; else fail "no Lease holder after 30 s"; fi
sleep 3   # both have tried at least once more
la=$(metric "$a_port" kinfer_leader) lb=$(metric "$b_port" kinfer_leader)
if [ $((la + lb)) -eq 1 ]; then pass "exactly one leader (a=$la b=$lb)"; else fail "leaders a=$la b=$lb"; fi
if [ "$la" = 1 ]; then
	lpid=$a_pid sport=$b_port slog=$tmp/b.log lport=$a_port
else
	lpid=$b_pid sport=$a_port slog=$tmp/a.log lport=$b_port
fi
expect_match "$(grep -h 'became the leader' "$tmp"/*.log)" "identity=$(holder)" "the Lease names the leader"
expect_match "$(curl -s "http://127.0.0.1:$lport/readyz")" '^ok \(leader\)' "leader /readyz says leader"
expect_match "$(curl -s "http://127.0.0.1:$sport/readyz")" '^ok \(standby\)' "standby /readyz says standby"
expect_match "$(curl -s "http://127.0.0.1:$sport/healthz")" '^ok' "standby /healthz ok"
m=$(curl -s "http://127.0.0.1:$lport/metrics")
expect_match "$m" 'kinfer_api_requests_total\{verb="update",code="200"\} [1-9]' "metrics count API requests by verb and code"
expect_match "$m" 'kinfer_build_info\{version="[0-9.]+"\} 1' "metrics show the build"
expect_match "$m" '# TYPE kinfer_api_request_duration_seconds histogram' "metrics have API latency histograms"

# README stays true: every metric family served is documented.
for name in $(printf '%s\n' "$m" | sed -n 's/^# TYPE \(kinfer_[a-z_]*\) .*/\1/p'); do
	if grep -q -- "| \`$name\` |" "$KINFER_SOURCE_DIR/README.md"; then pass "README documents $name"; else fail "README lacks $name"; fi
done

# SIGKILL the leader: the standby takes over once the lease expires.
t0=$(date +%s.%N)
kill -KILL "$lpid"
if wait_until 25 is_leader "$sport"; then
	dt=$(echo "$(date +%s.%N) - $t0" | bc)
	echo "handover after SIGKILL took ${dt} s (lease 15 s)"
	if [ "$(echo "$dt <= 19" | bc)" = 1 ]; then pass "handover within the lease duration + one retry (${dt} s)"; else fail "handover took ${dt} s"; fi
else
	fail "no handover within 25 s of SIGKILL"
fi

# A third replica; SIGTERM the leader: exit 0, lease released, fast takeover.
start_operator "$tmp/c.log" "${args[@]}" || exit 1
c_port=$started_port
sleep 1
spid=$a_pid
[ "$sport" = "$b_port" ] && spid=$b_pid
t0=$(date +%s.%N)
kill -TERM "$spid"
wait "$spid"; expect_code 0 $? "SIGTERM exits 0"
expect_match "$(cat "$slog")" 'released the leader lease' "the leader released the Lease"
if wait_until 10 is_leader "$c_port"; then
	dt=$(echo "$(date +%s.%N) - $t0" | bc)
	echo "handover after SIGTERM took ${dt} s"
	if [ "$(echo "$dt <= 5" | bc)" = 1 ]; then pass "standby took over at once after release (${dt} s)"; else fail "takeover after release took ${dt} s"; fi
else
	fail "no takeover within 10 s of release"
fi
summary
