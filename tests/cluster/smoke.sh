#!/usr/bin/env bash
# Smoke test of the local control plane: up.sh, the kwok pod lifecycle with
# readiness gates, pod deletion, down.sh. Runs in its own temporary DIR, so
# several can run at once.
#
#   tests/cluster/smoke.sh
#
# The last line is "N passed, N failed"; the exit status is 0 only if all
# checks passed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gate=kinfer.io/warmed-up
passed=0 failed=0

dir=$(mktemp -d "${TMPDIR:-/tmp}/kinfer-smoke.XXXXXX")
finish() {
	local rc=$?
	"$here/down.sh" "$dir" || true
	rm -rf "$dir"
	[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] || rc=1
	echo "$passed passed, $failed failed"
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
# A command that fails outside a check aborts the test: say where.
set -E
trap 'not_ok "aborted: line $LINENO: $BASH_COMMAND"' ERR

say() { printf 'smoke: %s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); say "ok: $*"; }
not_ok() { failed=$((failed + 1)); say "FAIL: $*"; }

# check DESC CMD...: one assertion.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# eventually SECONDS CMD...: poll CMD until it succeeds, at most SECONDS.
eventually() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.25
	done
}

k() { "$BIN/kubectl" --request-timeout=10s "$@"; }
pods() { k get pods -l "app=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
field() { k get pod "$1" -o jsonpath="$2"; }
ready() { [ "$(field "$1" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
not_ready() { [ "$(field "$1" '{.status.conditions[?(@.type=="Ready")].status}')" = False ]; }
gone() { ! k get pod "$1" >/dev/null 2>&1; }

# running_on_fake_node POD: Running, on a kwok node, with a loopback pod IP.
running_on_fake_node() {
	local phase node ip
	phase=$(field "$1" '{.status.phase}')
	node=$(field "$1" '{.spec.nodeName}')
	ip=$(field "$1" '{.status.podIP}')
	[ "$phase" = Running ] && [ -n "$node" ] && [[ "$ip" == 127.* ]] &&
		[ "$(k get node "$node" -o jsonpath='{.metadata.labels.type}')" = kwok ]
}
all_running() {
	local names n
	names=$(pods "$1")
	[ "$(echo "$names" | grep -c .)" -eq "$2" ] || return 1
	for n in $names; do running_on_fake_node "$n" || return 1; done
}
# held_by_gate POD: containers ready, Ready False because of the gate.
held_by_gate() {
	[ "$(field "$1" '{.status.conditions[?(@.type=="ContainersReady")].status}')" = True ] &&
		not_ready "$1" &&
		[ "$(field "$1" '{.status.conditions[?(@.type=="Ready")].reason}')" = ReadinessGatesNotReady ]
}
both_held() { held_by_gate "$1" && held_by_gate "$2"; }
plain_ready() { ready "$(pods plain)"; }
set_gate() {
	k patch pod "$1" --subresource=status --type=strategic \
		-p "{\"status\":{\"conditions\":[{\"type\":\"$gate\",\"status\":\"$2\"}]}}" >/dev/null
}
ready_replicas() { [ "$(k get deployment "$1" -o jsonpath='{.status.readyReplicas}')" = "$2" ]; }

deployment() { # deployment NAME REPLICAS GATED
	cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
$([ "$3" = yes ] && echo "      readinessGates: [{conditionType: $gate}]")
      containers: [{name: server, image: registry.invalid/x:1}]
YAML
}

start_cluster() {
	local t0=$SECONDS
	# The default pod CIDR (loopback) is what this test checks.
	if ! env -u KINFER_POD_CIDR "$here/up.sh" "$dir"; then
		not_ok "up.sh started the cluster"
		exit 1
	fi
	ok "up.sh started the cluster in $((SECONDS - t0)) s"
	set -a
	# shellcheck source=/dev/null
	. "$dir/env"
	set +a
}

main() {
	start_cluster
	{ deployment gated 2 yes; echo ---; deployment plain 1 no; } | k apply -f - >/dev/null

	check "gated pods Running on fake nodes with loopback IPs" eventually 30 all_running gated 2
	local a b
	read -r a b <<<"$(pods gated | tr '\n' ' ')"
	say "gated pods: $a $b"
	check "gated pods are held not Ready by the gate" eventually 10 both_held "$a" "$b"
	check "plain pod goes Ready" eventually 30 plain_ready

	set_gate "$a" True
	check "$a Ready within 10 s of its gate True" eventually 10 ready "$a"
	check "$b still not Ready" held_by_gate "$b"
	check "deployment gated has 1 ready replica" eventually 10 ready_replicas gated 1

	set_gate "$a" False
	check "$a leaves Ready within 10 s of its gate False" eventually 10 not_ready "$a"

	k delete pod "$b" --wait=false >/dev/null
	check "deleted pod $b goes away" eventually 15 gone "$b"
	check "deployment gated is back to 2 running pods" eventually 30 all_running gated 2
}

main
