# Assertions for scenario scripts: each prints one line, and summary ends
# with "N passed, N failed" and the exit status.
passed=0 failed=0
pass() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; }
expect_code() { # want got what
	if [ "$2" -eq "$1" ]; then pass "$3"; else fail "$3 (exit $2, want $1)"; fi
}
expect_match() { # text regex what
	if printf '%s' "$1" | grep -Eq -- "$2"; then pass "$3"; else fail "$3: /$2/ not in: $1"; fi
}
summary() {
	printf '%d passed, %d failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
}
# kubectl against the fixture's cluster.
kc() { (set -a; . "$KINFER_TEST_CLUSTER/env"; set +a; "$BIN/kubectl" "$@"); }
