#!/usr/bin/env bash
# Scenario: the scaling controls of issue 17 in `kinfer-operator simulate`,
# one example each in tests/data/simulate/controls, as a user runs them:
# activation threshold, fallback and pause in trace replay (the decision
# per line), panic mode, schedules and fallback+pause in the closed loop
# with the SVG showing them. No cluster.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
op=$KINFER_OPERATOR
d=$KINFER_SOURCE_DIR/tests/data/simulate/controls
begin

# pick FILE EXPR: EXPR over each JSON line of FILE, one result a line.
pick() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); print(eval(sys.argv[2]))' "$1" "$2"; }

# --- activation threshold: 2.5 and 3 queued at 1 replica wait, 4 scales.
"$op" simulate -f "$d/activation.yaml" --trace "$d/activation-trace.jsonl" > "$tmp/act.out"
expect_code 0 $? "activation trace exits 0"
expect_match "$(pick "$tmp/act.out" '"%d %d %s" % (d["t"], d["desired"], d["reason"])' | tr '\n' ';')" \
	'^0 1 BelowActivationThreshold;15 1 BelowActivationThreshold;30 2 DesiredWithinRange;45 3 ' \
	"activation: held at 1 replica at or below 3 queued, up above it, then the target decides"

# --- fallback: three held evaluations, the fourth goes to 6, metrics back.
"$op" simulate -f "$d/fallback.yaml" --trace "$d/fallback-trace.jsonl" > "$tmp/fb.out"
expect_code 0 $? "fallback trace exits 0"
expect_match "$(pick "$tmp/fb.out" '"%d %d %s %s" % (d["t"], d["desired"], d["reason"], d.get("failures", 0))' | tr '\n' ';')" \
	'^0 4 DesiredWithinRange 0;15 4 FailedGetPodsMetric 1;30 4 FailedGetPodsMetric 2;45 4 FailedGetPodsMetric 3;60 6 Fallback 4;75 6 Fallback 5;90 6 [A-Za-z]+ 0;$' \
	"fallback: hold for failureThreshold 3, then 6 replicas (currentReplicasIfHigher), reset when metrics return"

# --- pause: paused-replicas pins 3 under load, paused-scale-out holds, resume.
"$op" simulate -f "$d/fallback.yaml" --trace "$d/pause-trace.jsonl" > "$tmp/pause.out"
expect_code 0 $? "pause trace exits 0"
expect_match "$(pick "$tmp/pause.out" '"%d %d %s %s" % (d["t"], d["desired"], d["reason"], d.get("paused", False))' | tr '\n' ';')" \
	'^0 5 DesiredWithinRange False;15 3 Paused True;30 3 Paused True;45 3 ScaleOutPaused True;60 [4-9] [A-Za-z]+ False;$' \
	"pause: pinned at 3, scale-out held, scaling again once the annotation is gone"
printf '{"t":0,"replicas":2,"pods":[],"annotations":{"kinfer.io/paused-replicas":"lots"}}\n' > "$tmp/badpause.jsonl"
out=$("$op" simulate -f "$d/fallback.yaml" --trace "$tmp/badpause.jsonl" 2>&1); expect_code 2 $? "bad pause annotation exits 2"
expect_match "$out" 'badpause.jsonl:1: annotation kinfer.io/paused-replicas: want a whole number' "bad pause annotation is named with its line"

# --- panic: the burst scales to the demand at once and never down while it
# lasts; without panic the same burst climbs by the scale-up policy.
"$op" simulate -f "$d/panic.yaml" --load "$d/panic-load.jsonl" --load-seconds 30 --svg "$tmp/panic.svg" > "$tmp/panic.out"
expect_code 0 $? "panic closed loop exits 0"
expect_match "$(wc -l < "$tmp/panic.out")" '^ *180$' "panic evaluates every windowSeconds (5 s): 180 steps in 900 s"
pick "$tmp/panic.out" '"%d %d" % (d["t"], d["desired"])' > "$tmp/panic.td"
expect_match "$(grep -m1 '^125 ' "$tmp/panic.td")" '^125 12$' \
	"panic: the first step of the burst asks for maxReplicas at once"
expect_match "$(grep -c '"panicStarted":true' "$tmp/panic.out") $(grep -c '"panicEnded":true' "$tmp/panic.out")" '^1 1$' \
	"panic starts once and ends once"
if pick "$tmp/panic.out" 'd.get("panic") and d["desired"] < d["replicas"]' | grep -q True; then
	fail "panic: a scale-down while panicking"
else
	pass "panic: never a scale-down while panicking"
fi
grep -v 'panic:' "$d/panic.yaml" > "$tmp/calm.yaml"
"$op" simulate -f "$tmp/calm.yaml" --load "$d/panic-load.jsonl" --load-seconds 30 --step 5 > "$tmp/calm.out"
pick "$tmp/calm.out" '"%d %d" % (d["t"], d["desired"])' > "$tmp/calm.td"
expect_match "$(grep -m1 '^125 ' "$tmp/calm.td")" '^125 2$' \
	"without panic the same step adds one replica (scale-up policy)"
svg=$(cat "$tmp/panic.svg")
expect_match "$svg" '<rect class="panic" ' "panic SVG shades the panic"
expect_match "$svg" '>panic mode</text>' "panic SVG legend names panic mode"

# --- schedules: the Monday morning window (UTC+01:00) raises the floor to 4
# from 08:00 to 10:00 UTC, the status' bounds follow; then down again.
"$op" simulate -f "$d/schedules.yaml" --load "$d/schedules-load.jsonl" --step 300 --svg "$tmp/sched.svg" > "$tmp/sched.out"
expect_code 0 $? "schedules closed loop exits 0"
expect_match "$(pick "$tmp/sched.out" '"%d %d %d" % (d["t"], d["minReplicas"], d["desired"])' | sed -n '5p;6p;29p;30p' | tr '\n' ';')" \
	'^1796630100 1 1;1796630400 4 4;1796637300 4 4;1796637600 1 3;$' \
	"schedules: floor 4 from 09:00 local, back to 1 at 11:00 and down one pod a step"
expect_match "$(grep -c '"maxReplicas":12' "$tmp/sched.out")" '^36$' "the night window (22:00 local) is not open in the morning"
expect_match "$(cat "$tmp/sched.svg")" '<polyline class="min-replicas" ' "schedules SVG draws the floor in force"

# --- fallback and pause in the closed loop: metrics down for 3 minutes under
# rising load, then paused-scale-in while the load falls.
"$op" simulate -f "$d/fallback.yaml" --load "$d/fallback-load.jsonl" --load-seconds 30 --svg "$tmp/fb.svg" > "$tmp/fbl.out"
expect_code 0 $? "fallback closed loop exits 0"
expect_match "$(grep -m1 '"fallback":true' "$tmp/fbl.out")" '"t":360,.*"reason":"Fallback","failures":4,' \
	"closed loop: the fourth evaluation without metrics falls back"
expect_match "$(grep -c '"reason":"ScaleInPaused"' "$tmp/fbl.out")" '^[1-9][0-9]*$' "closed loop: scale-in held while paused"
if pick "$tmp/fbl.out" 'd["reason"] == "ScaleInPaused" and d["desired"] < d["replicas"]' | grep -q True; then
	fail "a scale-in while scale-in is paused"
else
	pass "no scale-in while scale-in is paused"
fi
svg=$(cat "$tmp/fb.svg")
expect_match "$svg" '<rect class="fallback" ' "SVG shades the fallback"
expect_match "$svg" '<rect class="paused" ' "SVG shades the pause"
for f in panic sched fb; do
	python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$tmp/$f.svg" \
		&& pass "$f SVG is well-formed XML" || fail "$f SVG is not well-formed XML"
done

# --- predictive floor (optional): a steady ramp; the trend raises the
# recommendation ahead of the load, so less waits than without it.
"$op" simulate -f "$d/predictive.yaml" --load "$d/predictive-load.jsonl" --load-seconds 60 --svg "$tmp/pred.svg" > "$tmp/pred.out"
expect_code 0 $? "predictive closed loop exits 0"
grep -v 'predictive:' "$d/predictive.yaml" > "$tmp/nopred.yaml"
"$op" simulate -f "$tmp/nopred.yaml" --load "$d/predictive-load.jsonl" --load-seconds 60 > "$tmp/nopred.out"
expect_match "$(grep -c '"reason":"PredictiveFloor"' "$tmp/pred.out")" '^[1-9][0-9]*$' "predictive: some decisions are the floor's"
expect_match "$(grep -c '"predicted"' "$tmp/nopred.out")" '^0$' "without predictive, no floor"
if pick "$tmp/pred.out" '"predicted" in d and d["predicted"] > 1.5 * 20' | grep -q True; then fail "a floor past the cap"; else pass "the floor stays within its cap"; fi
q1=$(pick "$tmp/pred.out" 'd["queue"]' | awk '{s += $1} END {printf "%d", s}')
q0=$(pick "$tmp/nopred.out" 'd["queue"]' | awk '{s += $1} END {printf "%d", s}')
[ "$q1" -lt "$q0" ] && pass "predictive: less queued over the ramp ($q1 vs $q0 request-steps)" || fail "predictive queued $q1, without $q0"
expect_match "$(cat "$tmp/pred.svg")" '<rect class="predicted" ' "the SVG shades where the floor raised"

# --- bad controls in the ISVC are named.
sed 's/timeZone: "UTC+01:00"/timeZone: Europe\/Berlin/' "$d/schedules.yaml" > "$tmp/tz.yaml"
out=$("$op" simulate -f "$tmp/tz.yaml" --load "$d/schedules-load.jsonl" 2>&1); expect_code 2 $? "a time zone name exits 2"
expect_match "$out" 'spec.scaling.schedules\[0\].timeZone: "Europe/Berlin" is not a time zone kinfer knows' "the time zone is named"
sed 's/cron: "0 9 \* \* 1-5"/cron: "0 9 * * 1-8"/' "$d/schedules.yaml" > "$tmp/cron.yaml"
out=$("$op" simulate -f "$tmp/cron.yaml" --load "$d/schedules-load.jsonl" 2>&1); expect_code 2 $? "a bad cron exits 2"
expect_match "$out" 'spec.scaling.schedules\[0\].cron: the day of week field "1-8" is not valid' "the cron field is named"
sed 's/behavior: currentReplicasIfHigher/behavior: higher/' "$d/fallback.yaml" > "$tmp/fbb.yaml"
out=$("$op" simulate -f "$tmp/fbb.yaml" --trace "$d/fallback-trace.jsonl" 2>&1); expect_code 2 $? "a bad fallback behavior exits 2"
expect_match "$out" 'spec.scaling.fallback.behavior must be static, currentReplicas' "the fallback behavior is named"
summary
