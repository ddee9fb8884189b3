#!/usr/bin/env bash
# Scenario: the kinfer-operator binary as a user meets it. Subcommands,
# --help, flag and kubeconfig errors (exit codes and messages), and `run`
# against the local control plane: connects, then stops cleanly on SIGTERM.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
op=$KINFER_OPERATOR

out=$("$op" version); expect_code 0 $? "version exits 0"
expect_match "$out" '^kinfer-operator [0-9]+\.[0-9]+\.[0-9]+' "version prints the version"

out=$("$op" --help); expect_code 0 $? "--help exits 0"
for f in kubeconfig context log-level log-format kube-api-qps kube-api-burst \
	kube-api-timeout kube-api-retries; do
	expect_match "$out" "--$f" "--help lists --$f"
done

# README stays true: every flag --help lists is in README's table.
readme=$KINFER_SOURCE_DIR/README.md
for f in $(printf '%s\n' "$out" | sed -n 's/^  --\([a-z0-9-]*\).*/\1/p'); do
	if grep -q -- "| \`--$f\` |" "$readme"; then pass "README documents --$f"; else fail "README lacks --$f"; fi
done

out=$("$op" run --bogus 2>&1); expect_code 2 $? "unknown flag exits 2"
expect_match "$out" 'unknown flag --bogus' "unknown flag is named"
out=$(KINFER_KUBE_API_QPS=fast "$op" run 2>&1); expect_code 2 $? "bad env value exits 2"
expect_match "$out" 'environment variable KINFER_KUBE_API_QPS: invalid value "fast"' "bad env value is named"
out=$("$op" frobnicate 2>&1); expect_code 2 $? "unknown command exits 2"

begin
printf 'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: "@@"}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n' > "$tmp/broken"
out=$("$op" run --kubeconfig "$tmp/broken" 2>&1); expect_code 1 $? "broken kubeconfig exits 1"
expect_match "$out" "clusters\[0\] \(c\): certificate-authority-data is not valid base64" "broken kubeconfig names the field"
out=$("$op" run --kubeconfig "$tmp/absent" 2>&1); expect_code 1 $? "missing kubeconfig exits 1"
expect_match "$out" "cannot read kubeconfig" "missing kubeconfig is explained"
out=$("$op" run --kubeconfig "$KINFER_TEST_KUBECONFIG" --context nope 2>&1); expect_code 1 $? "unknown context exits 1"
expect_match "$out" 'context \\"nope\\" not found' "unknown context is named"
# A server that answers but refuses kinfer (a token it does not know: 401)
# is not waited for, as a server that is down is (scenario.apiserver_restart):
# waiting does not mend credentials. Exit 1, the answer named.
server=$(sed -n 's/^ *server: *//p' "$KINFER_TEST_KUBECONFIG" | head -1)
printf 'clusters: [{name: c, cluster: {server: "%s", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: not-a-token}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n' "$server" > "$tmp/stranger"
out=$(timeout 20 "$op" run --kubeconfig "$tmp/stranger" --http-addr 127.0.0.1:0 2>&1); expect_code 1 $? "a refused token exits 1, not waited for"
expect_match "$out" '"the API server refused kinfer.s request".* code=401' "the refusal is named with its code"
# Nor a server whose certificate the kubeconfig's CA did not sign (here the
# client certificate stands in for a CA): configuration, not the network.
ca=$(sed -n 's/^ *client-certificate-data: *//p' "$KINFER_TEST_KUBECONFIG" | head -1)
printf 'clusters: [{name: c, cluster: {server: "%s", certificate-authority-data: "%s"}}]\nusers: [{name: u, user: {token: not-a-token}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n' "$server" "$ca" > "$tmp/wrong-ca"
out=$(timeout 20 "$op" run --kubeconfig "$tmp/wrong-ca" --http-addr 127.0.0.1:0 2>&1); expect_code 1 $? "a server certificate the CA did not sign exits 1, not waited for"
expect_match "$out" '"cannot reach the API server".*certificate' "the certificate problem is named"

# run: connects, logs JSON when asked, stops on SIGTERM with exit 0.
KINFER_LOG_FORMAT=json "$op" run --kubeconfig "$KINFER_TEST_KUBECONFIG" --http-addr 127.0.0.1:0 \
	--leader-elect=false --watch-namespace "cli-$$" 2> "$tmp/log" &
pid=$!
for _ in $(seq 1 300); do
	grep -q 'connected to the API server' "$tmp/log" && break
	sleep 0.1
done
expect_match "$(cat "$tmp/log")" '"msg":"connected to the API server".*"version":"v1.33.13"' "run connects and logs the server version"
kill -TERM $pid
wait $pid; expect_code 0 $? "SIGTERM exits 0"
if python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/log"; then
	pass "every log line is JSON"
else
	fail "log lines are not all JSON: $(cat "$tmp/log")"
fi
if grep -qi -E 'BEGIN|token' "$tmp/log"; then fail "log shows key material"; else pass "log shows no key material"; fi
summary
