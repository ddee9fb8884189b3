#!/usr/bin/env bash
# Scenario (issue 12, item 8): the warm-up gate is re-armed when the model
# server's container restarts after the pod turned warm. KWOK runs no
# containers, so the restart is what the kubelet would write, patched into
# pods/status: ContainersReady goes False (the crash), then True again with
# a higher restartCount; and a restart seen only afterwards (ContainersReady
# True since after the warm-up, restartCount up). Each time the pod leaves
# the Service (kinfer.io/warmed-up False, reason ContainerRestarted, an
# Event) and is warmed up again before it is Ready (the old code left it
# warm: it rejoined the Service cold).
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
containers() { # READY RESTARTS
	kc -n "$ns" patch pod "$p" --subresource=status --type=strategic -p "{\"status\":{
		\"conditions\":[{\"type\":\"ContainersReady\",\"status\":\"$1\",\"lastTransitionTime\":\"$(now)\"}],
		\"containerStatuses\":[{\"name\":\"model-server\",\"ready\":$( [ "$1" = True ] && echo true || echo false),\"restartCount\":$2}]}}" >/dev/null
}

apply_isvc svc <<YAML
  replicas: 1
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 2}
YAML
warm1() { [ "$(j kis/svc '{.status.warmReplicas}')" = 1 ]; }
if wait_until 60 warm1; then pass "1 pod warm"; else fail "not warm: $(j kis/svc '{.status}')"; fi
p=$(kc -n "$ns" get pods -l kinfer.io/service=svc -o jsonpath='{.items[0].metadata.name}')
expect_match "$(gate)" '^True/WarmupSucceeded$' "its gate is True"

# The container crashes: ContainersReady False.
sleep 1
containers False 1
if wait_until 15 is_gate False/ContainerRestarted; then pass "ContainersReady False: the gate goes False (ContainerRestarted)"; else fail "gate: $(gate)"; fi
# It comes back, cold: warmed up again before it is Ready.
sleep 1
containers True 1
if wait_until 30 is_gate True/WarmupSucceeded; then pass "back: warmed up again, the gate True"; else fail "gate: $(gate)"; fi
has_event() { grep -qw ContainerRestarted <<<"$(kc -n "$ns" get events --field-selector "involvedObject.name=$p" -o jsonpath='{.items[*].reason}')"; }
if wait_until 10 has_event; then pass "an Event ContainerRestarted on the pod"; else fail "no ContainerRestarted event"; fi

# A restart seen only afterwards: ContainersReady True since after the
# warm-up, restartCount up. The gate's False can be shorter than a poll
# (two fast warm-up requests), so what is checked is what it leaves: the
# Event that says so, and a gate True again since the restart (its
# lastTransitionTime moves only when its status changes).
sleep 2
t0=$(now)
containers True 2
restarted() { grep -q 'container restarted' <<<"$(kc -n "$ns" get events --field-selector "involvedObject.name=$p,reason=ContainerRestarted" -o jsonpath='{.items[*].message}')"; }
if wait_until 15 restarted; then pass "a restart seen afterwards: the gate went False (Event: container restarted)"; else fail "no 'container restarted' Event; gate: $(gate)"; fi
since() { j "pod/$p" '{.status.conditions[?(@.type=="kinfer.io/warmed-up")].lastTransitionTime}'; }
rewarmed() { is_gate True/WarmupSucceeded && [[ ! "$(since)" < "$t0" ]]; }
if wait_until 30 rewarmed; then pass "and the pod is warmed again (gate True since $(since), restart at $t0)"; else fail "gate: $(gate) since $(since), restart at $t0"; fi
summary
