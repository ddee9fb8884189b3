#!/usr/bin/env bash
# Scenario: kube-apiserver goes away for 30 s (killed, as in a crash or a
# control-plane upgrade) and comes back, with the operator running. While
# it was down every watch failed and backed off (up to 30 s, jittered to
# 60 s); once the server answers one of them, the others try again at once,
# so the operator sees the cluster again within seconds, not each kind at
# the end of its own backoff. Checked as a user sees it, from the moment
# the server is ready again: a Service, a Deployment and a Node made then
# are in the operator's caches within 5 s, and a change to an
# InferenceService reaches its Deployment within 10 s (the old operator:
# some kinds' watches came back 10-58 s after the server did, and the
# change waited for them).
# An operator and an activator started while the server is down wait for
# it (alive, not ready) and work once it is back, instead of exiting.
# Runs alone (RUN_SERIAL): it stops the fixture's API server.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin apirestart

install_crd
kc create ns "$ns" >/dev/null
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
apply_isvc a <<YAML
  replicas: 1
YAML
replicas() { [ "$(j deploy/a '{.spec.replicas}')" = "$1" ]; }
if wait_until 30 replicas 1; then pass "Deployment a with 1 replica"; else fail "no Deployment a: $(j deploy/a '{.spec}')"; fi

# A second namespace, watched by an operator (and an activator) started
# while the server is down: the pod of a replica restarted during an
# outage (a leader that lost its lease exits 1), or a new one scheduled.
ns2=$ns-late
kc create ns "$ns2" >/dev/null
_exit_nss+=("$ns2")
ns=$ns2 apply_isvc b <<YAML
  replicas: 1
YAML

down=${KINFER_APISERVER_DOWN_S:-30}
bash "$KINFER_SOURCE_DIR/tests/cluster/restart.sh" "$KINFER_TEST_CLUSTER" kube-apiserver --kill --down-for "$down" &
restart_pid=$!
track_pid "$restart_pid"
gone() { ! kc get --raw /readyz --request-timeout=1s >/dev/null 2>&1; }
wait_until 15 gone || fail "kube-apiserver still answers after it was killed"
"$KINFER_OPERATOR" run --kubeconfig "$KINFER_TEST_KUBECONFIG" --http-addr 127.0.0.1:0 \
	--leader-elect=true --leader-election-namespace "$ns2" --watch-namespace "$ns2" 2>"$tmp/late.log" &
late_pid=$!
op_pids+=("$late_pid")
op_logs+=("$tmp/late.log")
act_http=$(free_port)
"$KINFER_OPERATOR" activator --kubeconfig "$KINFER_TEST_KUBECONFIG" --listen 127.0.0.1:0 \
	--http-addr "127.0.0.1:$act_http" --shutdown-timeout 5s 2>"$tmp/late-act.log" &
late_act=$!
track_pid "$late_act" KILL
op_logs+=("$tmp/late-act.log")
# Started with no API server: both wait for it (the old ones exited 1 at
# once, "cannot reach the API server", and a pod restarted in
# CrashLoopBackOff, up to 5 minutes apart), alive to the kubelet's
# probes and not ready.
late_port=$(log_port "$tmp/late.log" "$late_pid" "serving health while waiting for the API server" port) || late_port=
sleep 4
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1$2"; }
if kill -0 "$late_pid" 2>/dev/null && [ -n "$late_port" ] && [ "$(code "$late_port" /healthz)" = 200 ] &&
	[ "$(code "$late_port" /readyz)" = 503 ] && curl -s --max-time 2 "http://127.0.0.1:$late_port/readyz" | grep -q 'not connected to the API server' &&
	grep -q '"API server not reached: waiting for it"' "$tmp/late.log"; then
	pass "an operator started while the API server is down waits for it: /healthz 200, /readyz 503"
else
	fail "an operator started while the API server is down: $(kill -0 "$late_pid" 2>/dev/null && echo running || echo exited) healthz=$(code "${late_port:-1}" /healthz) readyz=$(code "${late_port:-1}" /readyz): $(tail -3 "$tmp/late.log")"
fi
if kill -0 "$late_act" 2>/dev/null && [ "$(code "$act_http" /healthz)" = 200 ] &&
	[ "$(code "$act_http" /readyz)" = 503 ] && curl -s --max-time 2 "http://127.0.0.1:$act_http/readyz" | grep -q 'not connected to the API server'; then
	pass "an activator started while the API server is down waits for it: /healthz 200, /readyz 503"
else
	fail "an activator started while the API server is down: $(kill -0 "$late_act" 2>/dev/null && echo running || echo exited) healthz=$(code "$act_http" /healthz) readyz=$(code "$act_http" /readyz): $(tail -3 "$tmp/late-act.log")"
fi
if wait "$restart_pid"; then
	pass "kube-apiserver killed, down for $down s, ready again"
else
	fail "kube-apiserver did not come back"
	summary
fi
untrack_pid "$restart_pid"
back=$(date +%s%3N)
kc -n "$ns" patch kis a --type=merge -p '{"spec":{"replicas":2}}' >/dev/null
# Every kind's watch is back: a Service, a Deployment and a Node
# made after the restart are in the operator's caches
# (kinfer_cache_objects) within 5 s. (Whether a watch relisted or resumed
# from its resourceVersion depends on the server; what counts is that it
# sees what happens now.)
port=$started_port
count() { metric "$port" "kinfer_cache_objects{kind=\"$1\"}"; }
for k in Service Deployment Node; do eval "before_$k=$(count $k)"; done
kc -n "$ns" create service clusterip probe --tcp=80:8080 >/dev/null
kc -n "$ns" create deployment probe --image=registry.k8s.io/pause:3.10 --replicas=0 >/dev/null
kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: kinfer-probe-$$, labels: {type: kwok}}
spec: {taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]}
YAML
at_exit "kc delete node kinfer-probe-$$ --ignore-not-found >/dev/null 2>&1"
grown() { for k in Service Deployment Node; do local b; eval "b=\$before_$k"; [ "$(count $k)" -gt "${b:-0}" ] || return 1; done; }
if wait_until 5 grown; then
	pass "a Service, Deployment and Node made after the restart are in the caches $(($(date +%s%3N) - back)) ms after the server was ready"
else
	fail "caches after the restart: $(for k in Service Deployment Node; do eval "echo -n \"$k \$before_$k->$(count $k) \""; done)"
fi
if wait_until 10 replicas 2; then
	pass "replicas 2 applied after the restart: Deployment a has 2, $(($(date +%s%3N) - back)) ms after the server was ready"
else
	fail "Deployment a still has $(j deploy/a '{.spec.replicas}') replicas 10 s after the server was ready"
fi
# The operator and activator started during the outage work once the
# server is back: the operator leads and makes b's Deployment.
late_dep() { [ "$(kc -n "$ns2" get deploy b -o jsonpath='{.spec.replicas}' 2>/dev/null)" = 1 ]; }
if wait_until 20 late_dep; then
	pass "the operator started during the outage made Deployment b $(($(date +%s%3N) - back)) ms after the server was ready"
else
	fail "no Deployment b 20 s after the server was ready: $(grep -E 'reached|leader|error' "$tmp/late.log" | tail -4)"
fi
act_ready() { [ "$(code "$act_http" /readyz)" = 200 ]; }
if wait_until 10 act_ready; then
	pass "the activator started during the outage is ready $(($(date +%s%3N) - back)) ms after the server was"
else
	fail "activator not ready 10 s after the server was: $(tail -3 "$tmp/late-act.log")"
fi
# The fixture is shared: its own controllers (kube-controller-manager,
# kube-scheduler, kwok) come back from the outage at the end of their
# client-go backoffs, up to a minute, and the next scenario would meet a
# cluster that makes no pods yet. They are restarted (by their recorded
# PIDs) and a Deployment's pod must run before this scenario ends.
for c in kube-controller-manager kube-scheduler kwok; do
	bash "$KINFER_SOURCE_DIR/tests/cluster/restart.sh" "$KINFER_TEST_CLUSTER" "$c" 2>/dev/null ||
		fail "could not restart $c"
done
kc -n "$ns" create deployment settle --image=registry.k8s.io/pause:3.10 --replicas=1 >/dev/null
settled() { [ "$(kc -n "$ns" get pods -l app=settle -o jsonpath='{.items[*].status.phase}' 2>/dev/null)" = Running ]; }
if wait_until 60 settled; then pass "the fixture's controllers are back: a Deployment's pod runs"; else fail "no pod of Deployment settle runs: $(kc -n "$ns" get pods -l app=settle -o wide 2>&1 | tail -2)"; fi
summary
