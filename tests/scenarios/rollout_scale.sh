#!/usr/bin/env bash
# Scenario (issue 12, item 3): a scale-down at the same time as a rollout
# never removes a serving pod undrained. 4 warm replicas under steady load
# with a 2 s endpoint lag; the model revision changes (a rollout starts)
# and at once `kubectl scale kis --replicas=3`. kinfer defers the
# scale-down until the rollout has finished (Event ScaleDownDeferred), then
# drains one pod. A watch records every pod's state when its deletion
# starts: every pod removed while still Ready was replaced 1:1 by the
# rollout (the old code took the warming new pod as its "victim" and the
# Deployment controller removed a Ready old pod, never replaced), the
# scale-down's pod had left Ready (reason Draining) first, and no request
# failed. Then the other order: a drain under way when the revision
# changes is called off (its victim back in service) and done again once
# the rollout is over, no request failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
begin rolloutscale
bin=$sim_bin

install_crd
kc create ns "$ns" >/dev/null
start_sim --load-seconds 2s --cold-requests 3 --cold-ms 300ms --latency-ms 50ms --capacity 8
start_operator "$tmp/op.log" --leader-elect=false --watch-namespace "$ns" || exit 1
field() { sed -n "s/^$2 //p" "$1" | head -1; }

apply_isvc svc <<YAML
  model: {name: m, uri: s3://m, revision: v1}
  replicas: 4
  resources: {gpu: {count: 1}}
  warmup: {path: /v1/completions, requests: 3}
  drain: {timeoutSeconds: 30}
YAML
warm4() { [ "$(j kis/svc '{.status.warmReplicas}')" = 4 ]; }
if wait_until 90 warm4; then pass "4 warm pods on revision v1"; else fail "not warm: $(j kis/svc '{.status}')"; fi

# Every pod event from here on, to see each pod as its deletion starts.
kc_bg -n "$ns" get pods -l kinfer.io/service=svc --watch --output-watch-events -o json >"$tmp/watch.json" 2>/dev/null &
watch_pid=$!; track_pid "$watch_pid"
"$bin/kinfer-loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
	--selector kinfer.io/service=svc --rps 20 --duration 50s --endpoint-lag 2s \
	--out "$tmp/requests.jsonl" >"$tmp/lg.out" 2>"$tmp/lg.err" &
lg_pid=$!; track_pid "$lg_pid"
sleep 3
kc -n "$ns" patch kis svc --type=merge -p '{"spec":{"model":{"revision":"v2"}}}' >/dev/null
kc -n "$ns" scale kis/svc --replicas=3 >/dev/null
deferred() { grep -qw ScaleDownDeferred <<<"$(kc -n "$ns" get events --field-selector involvedObject.name=svc -o jsonpath='{.items[*].reason}')"; }
if wait_until 20 deferred; then pass "the scale-down waits for the rollout (Event ScaleDownDeferred)"; else fail "no ScaleDownDeferred event"; fi
# Pods not being deleted (a drained one stays Terminating for its grace period).
done3() { [ "$(j kis/svc '{.status.observedGeneration}')" = "$(j kis/svc '{.metadata.generation}')" ] &&
	[ "$(j deploy/svc '{.spec.template.metadata.annotations.kinfer\.io/model-revision}')" = v2 ] &&
	[ "$(j deploy/svc '{.spec.replicas}')" = 3 ] && [ "$(j deploy/svc '{.status.updatedReplicas}')" = 3 ] &&
	[ "$(j deploy/svc '{.status.replicas}')" = 3 ] &&
	[ "$(live_pods svc | wc -l)" = 3 ]; }
if wait_until 80 done3; then pass "rolled out to v2 and scaled to 3"; else fail "end state: $(j deploy/svc '{.spec.replicas} {.status}')"; fi
wait "$lg_pid"; untrack_pid "$lg_pid"
sleep 1
stop_pid "$watch_pid"
echo "rollout + scale-down at 20 rps, 2 s endpoint lag: $(field "$tmp/lg.out" sent) sent, $(field "$tmp/lg.out" failed) failed, p99 $(field "$tmp/lg.out" p99_ms) ms"
expect_match "$(field "$tmp/lg.out" failed)/$(field "$tmp/lg.out" no_endpoint)" '^0/0$' "zero failed requests during rollout + scale-down" ||
	grep '"error":"' "$tmp/requests.jsonl" | head -20

# Each pod's state when its deletion started, and the pods created.
python3 - "$tmp/watch.json" >"$tmp/deleted.txt" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
dec, i, first, created = json.JSONDecoder(), 0, {}, set()
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    ev, i = dec.raw_decode(text, i)
    o = ev.get("object", {})
    name = o.get("metadata", {}).get("name")
    if ev.get("type") == "ADDED" and not o.get("metadata", {}).get("deletionTimestamp"):
        created.add(name)
    if o.get("metadata", {}).get("deletionTimestamp") and name not in first:
        conds = {c["type"]: c for c in o.get("status", {}).get("conditions", [])}
        ready = conds.get("Ready", {}).get("status")
        gate = conds.get("kinfer.io/warmed-up", {}).get("reason", "")
        first[name] = (ready, gate, "kinfer.io/draining-since" in (o["metadata"].get("annotations") or {}))
for name, (ready, gate, since) in sorted(first.items()):
    print("deleted", name, ready, gate or "-", "drain-annotated" if since else "-")
print("seen", len(created))
PY
cat "$tmp/deleted.txt" | sed 's/^/  /'
seen=$(awk '$1 == "seen" { print $2 }' "$tmp/deleted.txt")
undrained=$(awk '$1 == "deleted" && $3 == "True" { n++ } END { print n + 0 }' "$tmp/deleted.txt")
drained=$(awk '$1 == "deleted" && $3 != "True" && $4 == "Draining" { n++ } END { print n + 0 }' "$tmp/deleted.txt")
# The 4 pods present when the watch started plus every pod made since.
new=$((seen - 4))
if [ "$undrained" -le "$new" ]; then
	pass "every pod removed while Ready was replaced by the rollout ($undrained removed Ready, $new new pods)"
else
	fail "$undrained pods removed while Ready but only $new new pods: a serving pod was removed undrained"
fi
expect_match "$drained" '^[1-9]' "the scale-down's pod left Ready (Draining) before its deletion"

# The other order: a drain under way (3 -> 2, the victim still sent
# requests through the 2 s endpoint lag) when the revision changes. The
# scale-down now waits for the rollout, so the victim goes back in service
# (DrainCancelled) instead of staying out of it while the rollout runs; the
# rollout done, one pod of the new revision is drained.
before=$(live_pods svc)
"$bin/kinfer-loadgen" --kubeconfig "$KINFER_TEST_KUBECONFIG" --namespace "$ns" \
	--selector kinfer.io/service=svc --rps 20 --duration 45s --endpoint-lag 2s \
	--out "$tmp/requests2.jsonl" >"$tmp/lg2.out" 2>"$tmp/lg2.err" &
lg_pid=$!; track_pid "$lg_pid"
sleep 2
kc -n "$ns" scale kis/svc --replicas=2 >/dev/null
victim=
draining() { for p in $before; do [ "$(reason_of "$p")" = Draining ] && victim=$p; done; [ -n "$victim" ]; }
wait_until 10 draining; expect_code 0 $? "3 -> 2: $victim draining"
kc -n "$ns" patch kis svc --type=merge -p '{"spec":{"model":{"revision":"v3"}}}' >/dev/null
back() { [ "$(reason_of "$victim")" = DrainCancelled ]; }
wait_until 10 back; expect_code 0 $? "a new revision mid-drain: $victim back in service (DrainCancelled) while the scale-down waits"
done2() { [ "$(j kis/svc '{.status.observedGeneration}')" = "$(j kis/svc '{.metadata.generation}')" ] &&
	[ "$(j deploy/svc '{.spec.template.metadata.annotations.kinfer\.io/model-revision}')" = v3 ] &&
	[ "$(j deploy/svc '{.spec.replicas}')" = 2 ] && [ "$(j deploy/svc '{.status.updatedReplicas}')" = 2 ] &&
	[ "$(j deploy/svc '{.status.replicas}')" = 2 ] && [ "$(live_pods svc | wc -l)" = 2 ]; }
if wait_until 80 done2; then pass "rolled out to v3, then drained to 2"; else fail "end state: $(j deploy/svc '{.spec.replicas} {.status}')"; fi
wait "$lg_pid"; untrack_pid "$lg_pid"
echo "drain, then rollout, at 20 rps: $(field "$tmp/lg2.out" sent) sent, $(field "$tmp/lg2.out" failed) failed, p99 $(field "$tmp/lg2.out" p99_ms) ms"
expect_match "$(field "$tmp/lg2.out" failed)/$(field "$tmp/lg2.out" no_endpoint)" '^0/0$' "zero failed requests" ||
	grep '"error":"' "$tmp/requests2.jsonl" | head -20
summary
