#!/bin/sh
# Build the benchmarks in Release (build-bench/ at the top of the tree) and
# run every bench_* binary, printing their "name value unit" lines. Build
# output goes to stderr; the exit status is 1 if any benchmark failed.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-bench"

targets=
for src in "$root"/tests/bench/bench_*.c; do
	targets="$targets $(basename "$src" .c)"
done

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKINFER_BENCH=ON >&2
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j2 --target $targets >&2

status=0
for t in $targets; do
	"$build/tests/bench/$t" || { echo "$t: failed" >&2; status=1; }
done
exit $status
