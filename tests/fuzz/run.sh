#!/usr/bin/env bash
# Build every fuzz target with clang and run each for a bounded time
# (FUZZ_SECONDS, default 30) from its seed corpus. Exits non-zero on any
# crash, leak or sanitizer report; the reproducer is left in build-fuzz/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-30}
cd "$root"
CC=clang cmake -S . -B build-fuzz -DKINFER_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_promtext fuzz_metricsource fuzz_watch fuzz_kubeconfig \
	fuzz_admission fuzz_validate fuzz_quantity fuzz_quota fuzz_activator fuzz_status
for t in promtext metricsource watch kubeconfig admission validate quantity quota activator status; do
	work=build-fuzz/corpus-$t
	mkdir -p "$work"
	echo "fuzz_$t: ${secs} s"
	# The informer frees replaced objects on liburcu's call_rcu thread after
	# the input returns, which libFuzzer takes for a leak and answers with a
	# full LeakSanitizer scan per input; leaks on that path are checked by
	# the ASan and valgrind test runs instead.
	extra=()
	[ "$t" = watch ] && extra=(-detect_leaks=0)
	(cd build-fuzz && "./tests/fuzz/fuzz_$t" "${extra[@]}" -max_total_time="$secs" -max_len=65536 \
		-rss_limit_mb=2048 -print_final_stats=1 "corpus-$t" "$root/tests/fuzz/corpus/$t" 2>&1 |
		grep -E 'Done|stat::number_of_executed_units|ERROR|SUMMARY' ) || true
	# libFuzzer leaves crash-*/leak-* files when it finds something.
	if ls build-fuzz/crash-* build-fuzz/leak-* build-fuzz/timeout-* >/dev/null 2>&1; then
		echo "fuzz_$t found a problem: $(ls build-fuzz/crash-* build-fuzz/leak-* build-fuzz/timeout-* 2>/dev/null)"
		exit 1
	fi
done
