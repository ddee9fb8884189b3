#!/usr/bin/env bash
# Scenario: the operator's connections to the API server go silent (its
# peer gone without a FIN or an RST: an API server instance lost behind its
# load balancer, a partition), while the server itself still answers new
# connections. A firewall rule (nftables, a table of this scenario, deleted
# at exit) drops every packet of the connections the operator has open;
# new ones pass. The operator gives those connections up within about 30 s
# (TCP keepalive probes and TCP_USER_TIMEOUT, as client-go's HTTP/2 health
# check does in 45 s) and goes on over new ones:
#   - a change to an InferenceService reaches its Deployment within 60 s
#     (before: more than 200 s, the watches and writes multiplexed on the
#     dead connections until the kernel's retransmissions gave up, ~15 min);
#   - the leader keeps its Lease (a renewal that timed out is tried again
#     on a new connection; before: the lease was lost after the 10 s renew
#     deadline and the process stopped).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin silent
command -v nft >/dev/null || { echo "nft is not installed (tests/deps.sh installs nftables)"; exit 1; }

install_crd
kc create ns "$ns" >/dev/null
start_operator "$tmp/op.log" --leader-elect=true --leader-election-namespace "$ns" \
	--watch-namespace "$ns" || exit 1
apply_isvc a <<YAML
  replicas: 1
YAML
replicas() { [ "$(j deploy/a '{.spec.replicas}')" = "$1" ]; }
leading() { [ "$(metric "$started_port" kinfer_leader)" = 1 ]; }
if wait_until 30 replicas 1 && wait_until 10 leading; then
	pass "Deployment a with 1 replica, the operator leads"
else
	fail "no Deployment a or no leader: $(j deploy/a '{.spec}') leader=$(metric "$started_port" kinfer_leader)"
fi

# The API server's port, and the operator's connections to it (by its PID).
port=$(sed -n 's/^ *server: *https:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$KINFER_TEST_KUBECONFIG" | head -1)
conns() { ss -tnpH state established "( dport = :$port )" 2>/dev/null | grep "pid=$started_pid," | awk '{ n = split($3, a, ":"); print a[n] }'; }
sports=$(conns | paste -sd, -)
if [ -n "$port" ] && [ -n "$sports" ]; then
	pass "the operator has $(conns | wc -l) connections to the API server (port $port)"
else
	fail "no connection of the operator to the API server found (port '$port')"
	summary
	exit 1
fi
table=kinfer-silent-$$
at_exit "nft delete table inet $table 2>/dev/null"
nft add table inet "$table" &&
	nft add chain inet "$table" out '{ type filter hook output priority 0; }' &&
	nft add rule inet "$table" out ip saddr 127.0.0.1 tcp sport "{ $sports }" tcp dport "$port" drop &&
	nft add rule inet "$table" out ip daddr 127.0.0.1 tcp dport "{ $sports }" tcp sport "$port" drop ||
	{ fail "could not add the nftables rule"; summary; exit 1; }
t0=$(date +%s%3N)
kc -n "$ns" patch kis a --type=merge -p '{"spec":{"replicas":2}}' >/dev/null
if wait_until 60 replicas 2; then
	pass "replicas 2 reached Deployment a $(($(date +%s%3N) - t0)) ms after the change, its connections silent"
else
	fail "Deployment a still has $(j deploy/a '{.spec.replicas}') replicas 60 s after the change: $(grep -E 'warn|error' "$tmp/op.log" | tail -3)"
fi
left=$(conns | grep -cxF -f <(tr , '\n' <<<"$sports")) || true
if [ "${left:-0}" -eq 0 ]; then pass "the silent connections are closed"; else fail "$left silent connections still established"; fi
if kill -0 "$started_pid" 2>/dev/null && leading && ! grep -q '"lost the leader lease"' "$tmp/op.log"; then
	pass "the operator kept the leader lease"
else
	fail "the leader lease was lost: $(grep -E 'leader' "$tmp/op.log" | tail -3)"
fi
nft delete table inet "$table"
summary
