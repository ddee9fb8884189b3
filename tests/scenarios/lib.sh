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
	if grep -Eq -- "$2" <<<"$1"; then pass "$3"; else fail "$3: /$2/ not in: $1"; return 1; fi
}
summary() {
	check_operator_logs
	[ "$failed" -eq 0 ] || failure_logs
	printf '%d passed, %d failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
}
# failure_logs: on a failure, the end of the simulator's log (what a pod's
# server did is otherwise lost with $tmp); KINFER_KEEP_TMP=1 keeps $tmp.
failure_logs() {
	if [ -n "$tmp" ] && [ -s "$tmp/sim.log" ]; then
		echo "     --- the simulator's log, last 30 lines:"
		tail -30 "$tmp/sim.log" | cut -c1-300 | sed 's/^/     /'
	fi
	if [ "${KINFER_KEEP_TMP:-}" = 1 ] && [ -n "$tmp" ]; then
		echo "     kept: $tmp"
		tmp=
	fi
}
# kubectl against the fixture's cluster.
kc() { (set -a; . "$KINFER_TEST_CLUSTER/env"; set +a; "$BIN/kubectl" "$@"); }
# kc_bg ARGS &: kubectl in the background, as $! itself. kc & leaves a shell
# between: stopping its PID left kubectl running (a watch, a port-forward).
kc_bg() {
	set -a
	. "$KINFER_TEST_CLUSTER/env"
	set +a
	exec "$BIN/kubectl" "$@"
}

# Operator processes started by a scenario, stopped by PID on every exit.
# Each checks its placement index against a scan of every node
# (--placement-index-check); summary fails the scenario on a difference,
# and on any sanitizer report in an operator's log (the ASan build, or a
# ThreadSanitizer one: KINFER_OPERATOR is any build).
export KINFER_PLACEMENT_INDEX_CHECK=${KINFER_PLACEMENT_INDEX_CHECK:-true}
op_pids=() op_logs=()
check_operator_logs() {
	local l m
	for l in "${op_logs[@]}"; do
		[ -f "$l" ] || continue
		m=$(grep '"placement index differs from scan"' "$l" | head -5) || true
		if [ -n "$m" ]; then fail "placement index and scan agree ($l): $m"; fi
		m=$(grep -A12 -E 'WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer|runtime error:' "$l" | head -40) || true
		if [ -n "$m" ]; then fail "no sanitizer report in the operator's log ($l): $m"; fi
	done
	op_logs=()
}
stop_operators() {
	local p
	for p in "${op_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${op_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	op_pids=()
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
	op_logs+=("$log")
	started_port=$(log_port "$log" "$started_pid" "serving health and metrics" port) && return 0
	echo "operator did not start: $(cat "$log")" >&2
	return 1
}
# start_activator BINARY LOG: `BINARY activator` on 127.0.0.1 (any free
# ports, 1 s keep-alives, 5 s shutdown), stopped at exit, its log checked
# by summary; sets $act_pid, $act_port (the proxied traffic) and
# $act_http_port (/metrics, /readyz), empty when it did not start.
start_activator() {
	"$1" activator --kubeconfig "$KINFER_TEST_KUBECONFIG" --listen 127.0.0.1:0 \
		--http-addr 127.0.0.1:0 --shutdown-timeout 5s --keepalive-interval 1s 2>"$2" &
	act_pid=$!
	track_pid "$act_pid" KILL
	op_logs+=("$2")
	act_port=$(log_port "$2" "$act_pid" "activator serving" port) || true
	act_http_port=$(log_port "$2" "$act_pid" "activator serving" http_port) || true
}
# log_port LOG PID MSG KEY: the port KEY= names on LOG's first line whose
# msg is MSG (a server's "serving" line: port 0 asked, the one bound told),
# waiting for it at most 10 s while PID lives; fails when it never came.
log_port() {
	local v
	for _ in $(seq 1 100); do
		v=$(sed -n "s/.*msg=\"$3\".* $4=\([0-9]*\).*/\1/p" "$1" | head -1)
		[ -n "$v" ] && { echo "$v"; return 0; }
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# free_port: a TCP port free on 127.0.0.1 now, for a server given a fixed one.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
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

# deny_policy NAME RULE EXPRESSION MESSAGE: a ValidatingAdmissionPolicy
# and its Deny binding for the namespace $ns, refusing the requests that
# RULE matches (one resourceRules entry, YAML flow style) and EXPRESSION
# (CEL, no double quote) fails, with MESSAGE; undone at exit, or earlier by
# deny_policy_remove NAME. It takes a moment to reach the API server's
# admission chain: wait for a refusal before relying on it.
deny_policy() {
	at_exit "kc delete validatingadmissionpolicybinding '$1' --ignore-not-found >/dev/null 2>&1"
	at_exit "kc delete validatingadmissionpolicy '$1' --ignore-not-found >/dev/null 2>&1"
	kc apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: $1}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - $2
  validations:
  - expression: "$3"
    message: "$4"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: $1}
spec:
  policyName: $1
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: $ns}
YAML
}
deny_policy_remove() {
	kc delete validatingadmissionpolicybinding "$1" >/dev/null &&
		kc delete validatingadmissionpolicy "$1" >/dev/null
}

# The InferenceService CRD, applied idempotently: scenarios run in any order
# and at once, each installs what it needs.
install_crd() {
	kc apply --server-side --force-conflicts -f "$KINFER_SOURCE_DIR/crds/inferenceservice.yaml" >/dev/null &&
		kc wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=30s >/dev/null
}

# --- A scenario's life. `begin [PREFIX]` makes $tmp (a fresh folder) and,
# with PREFIX, $ns (PREFIX-$$, deleted at exit; the scenario creates it when
# it needs it), and traps EXIT to `cleanup`, which undoes on every exit path
# what the scenario registered, in this order: commands (at_exit), operators
# (start_operator), processes by PID (track_pid, start_sim), namespaces
# (track_ns), then $tmp.
tmp= ns=
_exit_pids=() _exit_sigs=() _exit_cmds=() _exit_nss=()
begin() { # [PREFIX]
	tmp=$(mktemp -d)
	if [ $# -gt 0 ]; then
		ns=$1-$$
		_exit_nss=("$ns")
	fi
	trap cleanup EXIT
}
# track_pid PID [SIGNAL]: stopped at exit with SIGNAL (TERM), then waited for.
track_pid() {
	_exit_pids+=("$1")
	_exit_sigs+=("${2:-TERM}")
}
# stop_pid PID: stops a tracked process now (its signal, TERM if it is not
# tracked), waits for it and forgets it.
stop_pid() {
	local i sig=TERM
	for i in "${!_exit_pids[@]}"; do
		[ "${_exit_pids[i]}" = "$1" ] && sig=${_exit_sigs[i]}
	done
	kill -"$sig" "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	untrack_pid "$1"
}
# untrack_pid PID: forgets a process the scenario waited for itself (its PID
# may be another process's by the exit).
untrack_pid() {
	local i
	for i in "${!_exit_pids[@]}"; do
		[ "${_exit_pids[i]}" = "$1" ] && unset '_exit_pids[i]' '_exit_sigs[i]'
	done
	return 0
}
# at_exit CMD: a shell command run first at exit (while the operators still
# run: e.g. unregister a webhook they serve before they stop).
at_exit() { _exit_cmds+=("$1"); }
# track_ns NS: one more namespace deleted at exit.
track_ns() { _exit_nss+=("$1"); }
cleanup() {
	local i c n
	for c in "${_exit_cmds[@]}"; do eval "$c"; done
	stop_operators
	for i in "${!_exit_pids[@]}"; do
		kill -"${_exit_sigs[i]}" "${_exit_pids[i]}" 2>/dev/null
		wait "${_exit_pids[i]}" 2>/dev/null
	done
	for n in "${_exit_nss[@]}"; do kc delete ns "$n" --wait=false >/dev/null 2>&1; done
	[ -z "$tmp" ] || rm -rf "$tmp"
}

# j OBJECT JSONPATH: one field of an object in $ns ("" when it is not there).
j() { kc -n "$ns" get "$1" -o jsonpath="$2" 2>/dev/null; }
# reason_of POD: the reason of a pod's kinfer.io/warmed-up condition
# (Draining, DrainCancelled, WarmupSucceeded...).
reason_of() { j "pod/$1" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}'; }
# live_pods SERVICE: the names of the service's pods not being deleted.
live_pods() { kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}' | awk 'NF == 1 { print $1 }'; }
# cond KIS TYPE FIELD: a field of an InferenceService's condition.
cond() { j "kis/$1" "{.status.conditions[?(@.type==\"$2\")].$3}"; }

# start_sim ARGS...: the model-server simulator for the pods of $ns (it
# answers on their loopback IPs), log appended to $tmp/sim.log; sets
# $sim_pid, stopped at exit with TERM (it finishes in-flight requests) or
# with $sim_signal when set (`sim_signal=KILL start_sim ...`).
sim_bin=${KINFER_SIM_DIR:-$(dirname "${KINFER_OPERATOR:-.}")/tests/sim}
sim_pid=
start_sim() {
	"$sim_bin/kinfer-model-sim" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" "$@" 2>>"$tmp/sim.log" &
	sim_pid=$!
	track_pid "$sim_pid" "${sim_signal:-TERM}"
}

# apply_isvc NAME [KUBECTL-ARGS...] <<YAML: applies the InferenceService
# NAME in $ns whose spec is the here-doc (its lines as under `spec:`, two
# spaces in). Without a `model:` line, the model is {name: NAME, uri:
# s3://models/NAME}. The manifest stays in $tmp/NAME.yaml.
apply_isvc() {
	local name=$1 spec
	shift
	spec=$(cat)
	{
		printf 'apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\n'
		printf 'metadata: {name: %s, namespace: %s}\nspec:\n' "$name" "$ns"
		grep -q '^  model:' <<<"$spec" || printf '  model: {name: %s, uri: "s3://models/%s"}\n' "$name" "$name"
		[ -z "$spec" ] || printf '%s\n' "$spec"
	} >"$tmp/$name.yaml"
	kc apply -f "$tmp/$name.yaml" "$@" >/dev/null
}

# refused BY: the manifests of the catalogue tests/data/refused that BY
# refuses (crd: the API server, by the CRD's schema; webhook: kinfer's
# admission rules, also `kinfer-operator validate`), one path a line.
refused_dir=${KINFER_SOURCE_DIR:-}/tests/data/refused
refused() { grep -lx -- "# refused-by: $1" "$refused_dir"/*.yaml; }

# --- Rollouts (rollout_full, rollout_quota, node_rollout_full).
# gpu_node ID GPUS: a KWOK node of the scenario's own, NAME ID-n0, labelled
# kinfer.io/test=ID and tainted with it (so only pods that select and
# tolerate it go there), with GPUS nvidia.com/gpu (NVIDIA-L4); deleted at
# exit.
gpu_node() {
	at_exit "kc delete nodes -l kinfer.io/test=$1 --wait=false >/dev/null 2>&1"
	cat <<YAML | kc apply -f - >/dev/null
apiVersion: v1
kind: Node
metadata:
  name: $1-n0
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kinfer.io/test: "$1", nvidia.com/gpu.product: NVIDIA-L4, nvidia.com/gpu.memory: "23034"}
spec:
  taints: [{key: kinfer.io/test, value: "$1", effect: NoSchedule}]
status:
  capacity: {cpu: "64", memory: 1Ti, pods: "110", nvidia.com/gpu: "$2"}
  allocatable: {cpu: "64", memory: 1Ti, pods: "110", nvidia.com/gpu: "$2"}
YAML
}
# gpu_spec ID REVISION [GPUS] [REPLICAS] [PRODUCT]: the spec lines
# (apply_isvc) of a service whose pods go only to gpu_node ID: model m at
# REVISION, GPUS (1) of PRODUCT (any) a pod, REPLICAS (2), 2 warm-up
# requests and up to 10 attempts.
gpu_spec() {
	cat <<YAML
  replicas: ${4:-2}
  model: {name: m, uri: "s3://m", revision: "$2"}
  resources: {gpu: {count: ${3:-1}${5:+, product: $5}}}
  warmup: {path: /v1/completions, requests: 2, maxAttempts: 10}
  scheduling:
    nodeSelector: {kinfer.io/test: "$1"}
    tolerations: [{key: kinfer.io/test, operator: Equal, value: "$1", effect: NoSchedule}]
YAML
}
# strategy NAME: the Deployment's "maxSurge/maxUnavailable" ("1/0": adds
# before it removes; "0/1": one at a time).
strategy() { j "deploy/$1" '{.spec.strategy.rollingUpdate.maxSurge}/{.spec.strategy.rollingUpdate.maxUnavailable}'; }
# ready_count NAME: pods of the service Ready and not being deleted.
ready_count() {
	kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
		grep -c '^ True$'
}
# poll_ready NAME FILE SECONDS INTERVAL: "seconds count" lines of
# ready_count into FILE for SECONDS; run it in the background and
# track_pid it. ready_least FILE: the least count polled.
poll_ready() {
	local t=$SECONDS
	while [ $((SECONDS - t)) -lt "$3" ]; do
		echo "$((SECONDS - t)) $(ready_count "$1")"
		sleep "$4"
	done >"$2"
}
ready_least() { awk 'NR == 1 || $2 < m { m = $2 } END { print m + 0 }' "$1"; }
# rolled NAME REVISION N: exactly N pods of the service, N of them of
# REVISION and Ready.
rolled() {
	[ "$(kc -n "$ns" get pods -l "kinfer.io/service=$1" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{" "}{.metadata.annotations.kinfer\.io/model-revision}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
		grep -c "^ $2 True\$")" = "$3" ] &&
		[ "$(kc -n "$ns" get pods -l "kinfer.io/service=$1" --no-headers 2>/dev/null | wc -l)" = "$3" ]
}
