#!/usr/bin/env bash
# Scenario (issue 12, item 8): the warm-up gate is re-armed when the model
# server's container restarts after the pod turned warm. KWOK runs no
# containers, so the restart is what the kubelet would write, patched into
# pods/status: the container terminated (its restart not counted yet);
# ContainersReady False with a higher restartCount (the crash seen late),
# then True again; and a restart seen only afterwards (ContainersReady True,
# restartCount up). Each time the pod leaves the Service (kinfer.io/warmed-up
# False, reason ContainerRestarted, an Event) and is warmed up again before
# it is Ready (the old code left it warm: it rejoined the Service cold).
# And the other way: containers not ready while the same process runs (a
# kubelet restarted, a readiness probe failing) leave the pod warm (the
# code before this warmed it again).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin warmrestart

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 1s --cold-requests 0 --latency-ms 20ms
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
gate() { j "pod/$p" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].status}/{.status.conditions[?(@.type=="kinfer.io/warmed-up")].reason}'; }
is_gate() { [ "$(gate)" = "$1" ]; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
# containers READY RESTARTS [terminated]: the container's status as the
# kubelet writes it (the whole list: containerStatuses has no merge key, a
# patch replaces it), running since it last started unless terminated.
# KWOK writes its own (ready, running) again a moment later.
containers() {
	local st started
	started=$(j "pod/$p" '{.status.containerStatuses[0].state.running.startedAt}')
	st="{\"running\":{\"startedAt\":\"${started:-$(now)}\"}}"
	[ "${3:-}" = terminated ] &&
		st="{\"terminated\":{\"exitCode\":137,\"reason\":\"Error\",\"finishedAt\":\"$(now)\"}}"
	kc -n "$ns" patch pod "$p" --subresource=status --type=strategic -p "{\"status\":{
		\"conditions\":[{\"type\":\"ContainersReady\",\"status\":\"$1\",\"lastTransitionTime\":\"$(now)\"}],
		\"containerStatuses\":[{\"name\":\"model-server\",\"image\":\"x\",\"imageID\":\"\",\"ready\":$( [ "$1" = True ] && echo true || echo false),\"restartCount\":$2,\"state\":$st}]}}" >/dev/null
}
since() { j "pod/$p" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].lastTransitionTime}'; }
events_of() { kc -n "$ns" get events --field-selector "involvedObject.name=$p,reason=$1" -o jsonpath='{.items[*].message}'; }

apply_isvc svc <<YAML
  replicas: 1
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 2}
YAML
warm1() { [ "$(j kis/svc '{.status.warmReplicas}')" = 1 ]; }
if wait_until 60 warm1; then pass "1 pod warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
p=$(kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{.items[0].metadata.name}')
expect_match "$(gate)" '^True/WarmupSucceeded$' "its gate is True"


# Containers not ready while the same process runs (restartCount as when it
# turned warm, state running): what a kubelet that restarted reports until
# its startup probe passes again, or a readiness probe failing under load.
# The model never left memory: the pod stays warm (the kubelet keeps it out
# of the Service meanwhile). The old code warmed it again, and on a kubelet
# restart every replica on that node at once.
warm_since=$(since)
sleep 1
containers False 0
sleep 3
expect_match "$(gate) $(since)" "^True/WarmupSucceeded $warm_since\$" \
	"ContainersReady False, same process: the gate stays True (since $warm_since)"
containers True 0
sleep 2
expect_match "$(gate) $(since)" "^True/WarmupSucceeded $warm_since\$" "ContainersReady True again: still warm, not warmed again"
expect_match "$(events_of ContainerRestarted)" '^$' "no ContainerRestarted Event for it"

# The process ends (state terminated; the restart not counted yet): the
# pod is cold, and leaves the Service at once.
sleep 1
containers False 0 terminated
if wait_until 15 is_gate False/ContainerRestarted; then pass "its container terminated: the gate goes False (ContainerRestarted)"; else fail "gate: $(gate)"; fi
expect_match "$(events_of ContainerRestarted)" "container stopped" "the Event says the container stopped"
# The kubelet starts it again, cold: warmed up again before it is Ready.
sleep 1
containers True 1
if wait_until 30 is_gate True/WarmupSucceeded; then pass "back: warmed up again, the gate True"; else fail "gate: $(gate)"; fi

# The container crashes and is seen restarted at once: ContainersReady
# False, restartCount up.
sleep 1
containers False 2
if wait_until 15 is_gate False/ContainerRestarted; then pass "ContainersReady False, restartCount up: the gate goes False (ContainerRestarted)"; else fail "gate: $(gate)"; fi
# It comes back, cold: warmed up again before it is Ready.
sleep 1
containers True 2
if wait_until 30 is_gate True/WarmupSucceeded; then pass "back: warmed up again, the gate True"; else fail "gate: $(gate)"; fi
has_event() { grep -q 'container restarted' <<<"$(events_of ContainerRestarted)"; }
if wait_until 10 has_event; then pass "an Event ContainerRestarted on the pod (container restarted)"; else fail "no ContainerRestarted event: $(events_of ContainerRestarted)"; fi

# A restart seen only afterwards: ContainersReady True since after the
# warm-up, restartCount up. The gate's False can be shorter than a poll
# (two fast warm-up requests), so what is checked is what it leaves: the
# Event that says so, and a gate True again since the restart (its
# lastTransitionTime moves only when its status changes).
# The Event repeats one already sent within the recorder's dedup window, so
# it is not sent again: count the operator's log lines instead.
restarted_count() { grep -c 'msg="pod cold again".*container restarted' "$tmp/op.log"; }
sleep 2
n0=$(restarted_count)
t0=$(now)
containers True 3
restarted() { [ "$(restarted_count)" -gt "$n0" ]; }
if wait_until 15 restarted; then pass "a restart seen afterwards: the pod went cold (log: container restarted)"; else fail "no 'pod cold again' log line after $n0; gate: $(gate)"; fi
rewarmed() { is_gate True/WarmupSucceeded && [[ ! "$(since)" < "$t0" ]]; }
if wait_until 30 rewarmed; then pass "and the pod is warmed again (gate True since $(since), restart at $t0)"; else fail "gate: $(gate) since $(since), restart at $t0"; fi
summary
