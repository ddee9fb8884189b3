#!/usr/bin/env bash
# Run every kinfer test on this machine, from nothing:
#   1. install the build and test dependencies (Debian packages), and check
#      the C sources' format (tests/format.sh --check, .clang-format);
#   2. build the local control plane from Go modules (cached per machine);
#   3. build kinfer warning-free, run the unit tests under valgrind, and the
#      concurrent parts (cache, work queue, placement, informer, activator,
#      events) under ThreadSanitizer, and each
#      fuzz target for a bounded time (FUZZ_SECONDS, default 30);
#   4. build with AddressSanitizer + UndefinedBehaviorSanitizer and run all
#      tests (unit, integration against the real control plane, scenarios,
#      and some scenarios again with the operator built with
#      ThreadSanitizer: scenario.tsan_*) with ctest, whose summary is the
#      last thing printed.
# Usage: tests/run.sh [ctest args...]   e.g. tests/run.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '\n== %s\n' "$*" >&2; }
jobs=$(nproc 2>/dev/null || echo 2)

say "dependencies"
eval "$(bash tests/deps.sh)"

say "format (tests/format.sh --check; --fix rewrites)"
bash tests/format.sh --check

say "local control plane (built once per machine, then cached)"
bash tests/cluster/build.sh >/dev/null

say "build (-Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

say "unit tests under valgrind"
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite build/tests/kinfer_unit

say "concurrent parts under ThreadSanitizer (cache, work queue, placement, informer, activator, events)"
cmake -S . -B build-tsan -DKINFER_TSAN=ON -DKINFER_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-tsan -j "$jobs" --target kinfer_unit kinfer-operator
for g in cache workqueue placement informer activator events; do
	# history_size=7: the longest history, so that TSan restores the stack
	# of the earlier access; without it a race between rculist operations
	# (suppressed by function name) sometimes shows "[failed to restore the
	# stack]", matches no suppression and fails the run (unit cache: 1 of 4).
	# scenario.tsan_* run with the same (tests/scenarios/CMakeLists.txt).
	TSAN_OPTIONS="halt_on_error=1:history_size=7:suppressions=$root/tests/tsan.supp" build-tsan/tests/kinfer_unit "$g"
done

say "fuzz targets (clang, libFuzzer), ${FUZZ_SECONDS:-30} s each"
bash tests/fuzz/run.sh

say "build with AddressSanitizer + UndefinedBehaviorSanitizer"
# The TSan operator built above runs a few scenarios again (scenario.tsan_*).
cmake -S . -B build-asan -DKINFER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
	-DKINFER_TSAN_OPERATOR="$root/build-tsan/kinfer-operator" >/dev/null
cmake --build build-asan -j "$jobs"

say "all tests (ASan + UBSan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan
ctest --output-on-failure --timeout 900 "$@"
