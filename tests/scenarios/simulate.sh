#!/usr/bin/env bash
# Scenario: `kinfer-operator simulate` as a user runs it on the example
# files in tests/data/simulate: replaying a recorded metrics trace (burst
# -> scale up at once, quiet -> one replica a minute after the 300 s
# window), the closed loop on "yesterday's traffic" with its SVG plot, and
# bad input (exit 2, the message names the file and line). No cluster.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
op=$KINFER_OPERATOR
data=$KINFER_SOURCE_DIR/tests/data/simulate
begin

# line N FILE: the N-th line of FILE.
line() { sed -n "$1p" "$2"; }
# jq-less field access: field FILE EXPR prints EXPR over each JSON line.
field() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); print(eval(sys.argv[2]))' "$1" "$2"; }

out=$("$op" --help); expect_code 0 $? "--help exits 0"
expect_match "$out" '^  simulate ' "--help lists simulate"
out=$("$op" simulate --help); expect_code 0 $? "simulate --help exits 0"
for f in filename trace load capacity latency-ms load-seconds step svg; do
	expect_match "$out" "--$f" "simulate --help lists --$f"
done

# Trace replay: one decision per input line, in order, valid JSON.
"$op" simulate -f "$data/isvc.yaml" --trace "$data/trace.jsonl" > "$tmp/trace.out"
expect_code 0 $? "trace replay exits 0"
want=$(grep -c . "$data/trace.jsonl")
expect_match "$(wc -l < "$tmp/trace.out")" "^ *$want\$" "one output line per trace line ($want)"
if [ "$(field "$tmp/trace.out" 'd["t"]')" = "$(field "$data/trace.jsonl" 'd["t"]')" ]; then
	pass "output t follows the trace"
else
	fail "output t differs from the trace"
fi
expect_match "$(line 1 "$tmp/trace.out")" \
	'^\{"t":0,"replicas":2,"desired":2,"reason":"DesiredWithinRange","limited":false,"metric":"GPUUtilization"\}$' \
	"quiet start: hold 2"
expect_match "$(line 9 "$tmp/trace.out")" \
	'^\{"t":120,"replicas":2,"desired":3,"reason":"ScaleUpLimit","limited":true,"metric":"QueueDepth"\}$' \
	"burst at t=120: scale up in the same evaluation, +50% at most"
expect_match "$(line 13 "$tmp/trace.out")" '"t":180,"replicas":12,"desired":16,"reason":"TooManyReplicas"' \
	"scale-up stops at maxReplicas"
downs=$(field "$tmp/trace.out" '"%d %d" % (d["t"], d["replicas"] - d["desired"]) if d["desired"] < d["replicas"] else ""' | grep .)
expect_match "$(printf '%s\n' "$downs" | head -1)" '^555 1$' \
	"first scale-down 300 s after the last busy evaluation"
if printf '%s\n' "$downs" | awk 'NR > 1 && ($1 - p < 60 || $2 != 1) { bad = 1 } { p = $1 } END { exit bad }'; then
	pass "scale-down one replica at a time, a minute apart"
else
	fail "scale-down steps: $downs"
fi
expect_match "$(tail -1 "$tmp/trace.out")" '"replicas":2,"desired":2' "back at minReplicas"

# The trace is what ran: replicas the next line reports win.
printf '%s\n' '{"t": 0, "replicas": 2, "pods": [{"metrics": {"QueueDepth": 30}}, {"metrics": {"QueueDepth": 30}}]}' \
	'{"t": 15, "replicas": 2, "pods": [{"metrics": {"QueueDepth": 30}}, {"ready": false}]}' > "$tmp/held.jsonl"
out=$("$op" simulate -f "$data/isvc.yaml" --trace "$tmp/held.jsonl"); expect_code 0 $? "short trace exits 0"
expect_match "$(printf '%s\n' "$out" | sed -n 2p)" '^\{"t":15,"replicas":2,"desired":3,' "the trace's replicas are trusted"

# Closed loop on yesterday's traffic, with the plot.
"$op" simulate -f "$data/isvc.yaml" --load "$data/load.jsonl" --capacity 8 \
	--latency-ms 900 --load-seconds 90 --svg "$tmp/run.svg" > "$tmp/loop.out"
expect_code 0 $? "closed loop exits 0"
expect_match "$(wc -l < "$tmp/loop.out")" '^ *480$' "one line per 15 s step over 2 hours"
expect_match "$(line 1 "$tmp/loop.out")" \
	'^\{"t":15,"rps":6,"replicas":2,"ready":2,"queue":0,"p99_ms":900,"desired":2,"reason":"[A-Za-z]+","metric":"[A-Za-z0-9]+"\}$' \
	"first step: the night's load on minReplicas"
max=$(field "$tmp/loop.out" 'd["replicas"]' | sort -n | tail -1)
expect_match "$max" '^16$' "the burst drives replicas to maxReplicas"
if field "$tmp/loop.out" 'd["ready"] <= d["replicas"] and 2 <= d["replicas"] <= 16' | grep -q False; then
	fail "ready or replicas out of bounds"
else
	pass "ready <= replicas, replicas within 2..16"
fi
burst=$(field "$tmp/loop.out" '"%d %s %d" % (d["t"], d["queue"], d["desired"])' | awk '$1 >= 4200 && $2 > 0' | head -1)
expect_match "$burst" '^4215 [0-9.]+ ([1-9][0-9])$' "queue at the burst's first step, and a scale-up"
expect_match "$(field "$tmp/loop.out" 'd["queue"]' | sed -n '300,$p' | tail -60 | sort -nu | tr '\n' ' ')" '^0 $' \
	"the queue drained after the burst"
expect_match "$(tail -1 "$tmp/loop.out")" '"t":7200,.*"queue":0,"p99_ms":900,' "the run ends at the last load line"
out=$("$op" simulate -f "$data/isvc.yaml" --load "$data/load.jsonl" --step 60 | wc -l)
expect_match "$out" '^ *120$' "--step 60: 120 steps"

# The SVG: a document with a time axis, the polylines and a legend.
[ -s "$tmp/run.svg" ] && pass "SVG written" || fail "no SVG"
svg=$(cat "$tmp/run.svg")
expect_match "$svg" '<svg xmlns="http://www.w3.org/2000/svg"' "SVG opens with <svg"
expect_match "$(tail -1 "$tmp/run.svg")" '^</svg>$' "SVG ends with </svg>"
for s in load replicas ready p99; do
	expect_match "$svg" "<polyline class=\"$s\" [^>]*points=\"[0-9]" "SVG has the $s polyline"
done
expect_match "$svg" '>2:00</text>' "SVG time axis reaches 2:00"
expect_match "$svg" 'class="legend"' "SVG has a legend"
if python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$tmp/run.svg"; then
	pass "SVG is well-formed XML"
else
	fail "SVG is not well-formed XML"
fi

# Bad input: exit 2 and the message names the file and line.
sed '3s/"replicas": [0-9]*, //' "$data/trace.jsonl" > "$tmp/bad.jsonl"
out=$("$op" simulate -f "$data/isvc.yaml" --trace "$tmp/bad.jsonl" 2> "$tmp/err"); expect_code 2 $? "bad trace exits 2"
expect_match "$(cat "$tmp/err")" "^kinfer-operator simulate: $tmp/bad.jsonl:3: \"replicas\" is missing\$" "missing replicas is named with its line"
expect_match "$(printf '%s\n' "$out" | wc -l)" '^ *2$' "lines before the bad one are printed"
printf '{"t": 0, "replicas": 1}\n{"t": 15, "replicas": 1,\n' > "$tmp/cut.jsonl"
out=$("$op" simulate -f "$data/isvc.yaml" --trace "$tmp/cut.jsonl" 2>&1); expect_code 2 $? "invalid JSON exits 2"
expect_match "$out" 'cut.jsonl:2: not valid JSON' "invalid JSON is named with its line"
printf '{"t": 0, "replicas": 1, "pods": [{"metrics": {"QueueLength": 3}}]}\n' > "$tmp/type.jsonl"
out=$("$op" simulate -f "$data/isvc.yaml" --trace "$tmp/type.jsonl" 2>&1); expect_code 2 $? "unknown metric in the trace exits 2"
expect_match "$out" 'type.jsonl:1: pods\[0\].metrics: unknown metric type "QueueLength"' "unknown metric in the trace is named"
sed 's/type: QueueDepth/type: QueueLength/' "$data/isvc.yaml" > "$tmp/badtype.yaml"
out=$("$op" simulate -f "$tmp/badtype.yaml" --trace "$data/trace.jsonl" 2>&1); expect_code 2 $? "unknown metric type in the isvc exits 2"
expect_match "$out" 'badtype.yaml:[0-9]+: spec.scaling.metrics\[1\].type: unknown metric type "QueueLength"' "unknown metric type in the isvc is named"
sed '/^  scaling:/,$d' "$data/isvc.yaml" > "$tmp/noscaling.yaml"
out=$("$op" simulate -f "$tmp/noscaling.yaml" --trace "$data/trace.jsonl" 2>&1); expect_code 2 $? "isvc without spec.scaling exits 2"
expect_match "$out" 'noscaling.yaml:[0-9]+: the InferenceService has no spec.scaling' "missing spec.scaling is explained"
out=$("$op" simulate -f "$data/isvc.yaml" --trace "$tmp/absent.jsonl" 2>&1); expect_code 2 $? "unreadable trace exits 2"
expect_match "$out" 'absent.jsonl: No such file or directory' "unreadable trace is named"
out=$("$op" simulate -f "$tmp/absent.yaml" --load "$data/load.jsonl" 2>&1); expect_code 2 $? "unreadable isvc exits 2"
expect_match "$out" 'absent.yaml: No such file or directory' "unreadable isvc is named"
printf '{"t": 0, "rps": 5}\n{"t": 60, "rps": "lots"}\n' > "$tmp/badload.jsonl"
out=$("$op" simulate -f "$data/isvc.yaml" --load "$tmp/badload.jsonl" --svg "$tmp/bad.svg" 2>&1); expect_code 2 $? "bad load trace exits 2"
expect_match "$out" 'badload.jsonl:2: "rps" must be a number' "bad load line is named"
[ -e "$tmp/bad.svg" ] && fail "a failed run leaves an SVG" || pass "a failed run leaves no SVG"
out=$("$op" simulate -f "$data/isvc.yaml" --trace "$data/trace.jsonl" --svg "$tmp/x.svg" 2>&1); expect_code 2 $? "--svg with --trace exits 2"
expect_match "$out" 'go with --load' "--svg with --trace is explained"
out=$("$op" simulate -f "$data/isvc.yaml" 2>&1); expect_code 2 $? "no mode exits 2"
expect_match "$out" 'give one of --trace or --load' "no mode is explained"
out=$("$op" simulate --trace "$data/trace.jsonl" --bogus 2>&1); expect_code 2 $? "unknown flag exits 2"
expect_match "$out" 'unknown flag --bogus' "unknown flag is named"
summary
