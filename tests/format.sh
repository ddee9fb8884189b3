#!/usr/bin/env bash
# The project's C sources against .clang-format (clang-format 14, installed
# by tests/deps.sh):
#   tests/format.sh --check   lists the files a reformat would change, exits 1
#                             when there is any (0 when all are formatted)
#   tests/format.sh --fix     rewrites them in place
# The sources are the *.c and *.h files git tracks, less what is not ours to
# format (generated files are written to the build tree, not tracked).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-}
case "$mode" in
--check | --fix) ;;
*) echo "usage: tests/format.sh --check|--fix" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null || { echo "clang-format is not installed (tests/deps.sh installs it)" >&2; exit 2; }

files=()
while IFS= read -r f; do
	case "$f" in
	*/third_party/* | */vendor/* | tests/fuzz/corpus/* | */crd_embed.c) continue ;;
	esac
	files+=("$f")
done < <(git ls-files -- '*.c' '*.h')
[ ${#files[@]} -gt 0 ] || { echo "no C sources found" >&2; exit 2; }

if [ "$mode" = --fix ]; then
	clang-format -i --style=file "${files[@]}"
	exit 0
fi
bad=()
for f in "${files[@]}"; do
	clang-format --dry-run --Werror --style=file "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
	printf 'not formatted (tests/format.sh --fix rewrites them):\n' >&2
	printf '  %s\n' "${bad[@]}" >&2
	exit 1
fi
echo "format: ${#files[@]} files formatted"
