# Assertions for scenario scripts: each prints one line, and summary ends
# with "N passed, N failed" and the exit status.
passed=0 failed=0
pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; }
expect_code() { # want got what
	if [ "$2" -eq "$1" ]; then pass "$3"; else fail "$3 (exit $2, want $1)"; fi
}
expect_match() { # text regex what
	# A here-string, not a pipe: grep -q exits at the first match, and with
	# pipefail a writer still holding more than a pipe's 64 KiB would die
	# of SIGPIPE and turn a match into a failure.
	if grep -Eq -- "$2" <<<"$1"; then pass "$3"; else fail "$3: /$2/ not in: $1"; fi
}
summary() {
	printf '%d passed, %d failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
}
# kubectl against the fixture's cluster.
kc() { (set -a; . "$KINFER_TEST_CLUSTER/env"; set +a; "$BIN/kubectl" "$@"); }

# Operator processes started by a scenario, stopped by PID on every exit.
op_pids=()
stop_operators() {
	local p
	for p in "${op_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${op_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
# start_operator LOGFILE ARGS...: runs kinfer-operator in the background,
# sets $started_pid, and waits (bounded) until it serves HTTP; sets
# $started_port from its log.
start_operator() {
	local log=$1
	shift
	"$KINFER_OPERATOR" run --kubeconfig "$KINFER_TEST_KUBECONFIG" \
		--http-addr 127.0.0.1:0 "$@" 2>"$log" &
	started_pid=$!
	op_pids+=("$started_pid")
	started_port=
	for _ in $(seq 1 100); do
		started_port=$(sed -n 's/.*msg="serving health and metrics".* port=\([0-9]*\).*/\1/p' "$log" | head -1)
		[ -n "$started_port" ] && return 0
		kill -0 "$started_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "operator did not start: $(cat "$log")" >&2
	return 1
}
# metric PORT NAME: the value of an unlabelled metric.
metric() { curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }
# wait_until SECONDS CMD...: poll every 0.2 s.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# The InferenceService CRD, applied idempotently: scenarios run in any order
# and at once, each installs what it needs.
install_crd() {
	kc apply --server-side --force-conflicts -f "$KINFER_SOURCE_DIR/crds/inferenceservice.yaml" >/dev/null &&
		kc wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=30s >/dev/null
}
