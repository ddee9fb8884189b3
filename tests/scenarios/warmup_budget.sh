#!/usr/bin/env bash
# Scenario (issue 12, item 6): one service's stalled model servers cannot
# keep other services' pods from turning warm. Service `stall` has 8 pods
# whose warm-up requests hang (the simulator holds them 100 s); once they
# are all being warmed, service `ok` gets one healthy pod, which must turn
# warm in its normal time. The old warm-up sent its requests from one of
# the 8 warm-up workers, each held for the request timeout (60 s here), so
# `ok` waited for a worker; now the requests run off the workers and one
# service holds at most 4 warm-ups at a time.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin warmbudget

install_crd
kc create ns "$ns" >/dev/null
# Stopped with KILL: its stalled warm-up answers would hold a TERM for 100 s.
sim_signal=KILL start_sim --load-seconds 1s --cold-requests 0 --latency-ms 20ms --stall-warmup-prefix stall
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
isvc() { # NAME REPLICAS
	apply_isvc "$1" <<YAML
  replicas: $2
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 1, requestTimeoutSeconds: 60, timeoutSeconds: 120}
YAML
}

isvc stall 8
stalled() { [ "$(grep 'warm-up stalled' "$tmp/sim.log" | grep -c 'count=1')" -ge "$1" ]; }
# Every stalled pod's warm-up is under way (or, with the budget, the first 4).
if wait_until 60 stalled 4; then pass "the stalled service's warm-ups hang ($(grep 'warm-up stalled' "$tmp/sim.log" | grep -c 'count=1') started)"; else fail "no stalled warm-up: $(tail -3 "$tmp/sim.log")"; fi
sleep 5
start=$SECONDS
isvc ok 1
okwarm() { [ "$(j kis/ok '{.status.warmReplicas}')" = 1 ]; }
if wait_until 60 okwarm; then
	took=$((SECONDS - start))
	echo "the healthy pod of another service turned warm in $took s"
	expect_match "$took" '^([0-9]|1[0-9]|2[0-9])$' "the healthy pod of service ok turns warm in normal time (under 30 s)"
else
	fail "ok not warm: $(j kis/ok '{.status}')"
fi
expect_match "$(j kis/stall '{.status.warmReplicas}')" '^0$' "the stalled service is still not warm"
summary
