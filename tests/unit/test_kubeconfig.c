/*
 * kubeconfig: the shapes kubectl writes, relative paths, merging, the
 * in-cluster files, and one clear error per broken field.
 */
#include "unit.h"

#include "kubeconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "hello" and "key" in base64. */
#define KC_HEAD \
	"apiVersion: v1\nkind: Config\n" \
	"clusters:\n" \
	"- name: local\n  cluster:\n    server: https://127.0.0.1:6443/\n" \
	"    certificate-authority-data: aGVsbG8=\n" \
	"- name: other\n  cluster:\n    server: https://10.0.0.1\n" \
	"    insecure-skip-tls-verify: true\n" \
	"users:\n" \
	"- name: admin\n  user:\n    client-certificate-data: aGVsbG8=\n" \
	"    client-key-data: a2V5\n" \
	"- name: bot\n  user:\n    token: abc.def\n" \
	"contexts:\n" \
	"- name: kinfer-local\n  context: {cluster: local, user: admin, namespace: serving}\n" \
	"- name: other\n  context: {cluster: other, user: bot}\n"

static int parse(const char *y, const char *ctx, struct kube_auth **a, char *err)
{
	return kubeconfig_parse(y, strlen(y), "/tmp/kc/config", ctx, a, err, 512);
}

static void current_context(void **state)
{
	struct kube_auth *a = NULL;
	char err[512];
	(void)state;
	assert_int_equal(parse(KC_HEAD "current-context: kinfer-local\n", NULL, &a, err), 0);
	assert_string_equal(a->server, "https://127.0.0.1:6443");
	assert_int_equal(a->ca_len, 5);
	assert_memory_equal(a->ca_data, "hello", 5);
	assert_memory_equal(a->key_data, "key", 3);
	assert_string_equal(a->namespace, "serving");
	assert_string_equal(a->context, "kinfer-local");
	assert_false(a->insecure);
	assert_null(a->token);
	kube_auth_free(a);
}

static void explicit_context(void **state)
{
	struct kube_auth *a = NULL;
	char err[512];
	(void)state;
	assert_int_equal(parse(KC_HEAD "current-context: kinfer-local\n", "other", &a, err), 0);
	assert_string_equal(a->server, "https://10.0.0.1");
	assert_true(a->insecure);
	assert_string_equal(a->token, "abc.def");
	assert_string_equal(a->namespace, "default");
	kube_auth_free(a);
}

static void expect_error(const char *y, const char *ctx, const char *needle)
{
	struct kube_auth *a = NULL;
	char err[512] = "";
	int r = parse(y, ctx, &a, err);
	if (r >= 0 || !strstr(err, needle))
		fail_msg("want error containing \"%s\", got %d \"%s\"", needle, r, err);
	assert_null(a);
}

static void broken_files_name_the_field(void **state)
{
	(void)state;
	expect_error(KC_HEAD, NULL, "no current-context is set");
	expect_error(KC_HEAD "current-context: nope\n", NULL, "context \"nope\" not found");
	expect_error("clusters: [{name: c, cluster: {server: 'ftp://x'}}]\n"
		     "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
		     NULL, "clusters[0] (c): server \"ftp://x\" must start with https://");
	expect_error("clusters: [{name: c, cluster: {}}]\n"
		     "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
		     NULL, "clusters[0] (c): server is missing");
	expect_error("clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
		     "contexts: [{name: x, context: {cluster: d}}]\ncurrent-context: x\n",
		     NULL, "names cluster \"d\", which is not in clusters");
	expect_error("clusters: [{name: c, cluster: {server: 'https://a', "
		     "certificate-authority-data: '!!'}}]\n"
		     "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
		     NULL, "certificate-authority-data is not valid base64");
	expect_error("clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {exec: {command: aws}}}]\n"
		     "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
		     NULL, "users[0] (u): exec credential plugins are not supported");
	expect_error("clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {client-certificate-data: aGVsbG8=}}]\n"
		     "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
		     NULL, "a client certificate needs its key");
	expect_error("clusters: [{name: c, cluster: {server: 'https://a', "
		     "certificate-authority: missing.crt}}]\n"
		     "contexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n",
		     NULL, "certificate-authority /tmp/kc/missing.crt cannot be read");
	expect_error("- just\n- a list\n", NULL, "not a kubeconfig");
	expect_error("a: [1,\n", NULL, "/tmp/kc/config: line ");
}

static char *write_file(const char *dir, const char *name, const char *text)
{
	char *p;
	FILE *f;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static void relative_paths_and_merge(void **state)
{
	char dir[] = "/tmp/kinfer-kc-XXXXXX";
	struct kube_auth *a = NULL;
	char err[512], *list;
	(void)state;
	assert_non_null(mkdtemp(dir));
	char *ca = write_file(dir, "ca.crt", "PEM");
	char *c1 = write_file(dir, "one",
			      "clusters: [{name: c, cluster: "
			      "{server: 'https://a:1', certificate-authority: ca.crt}}]\n"
			      "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
	char *c2 = write_file(dir, "two",
			      "current-context: x\n"
			      "users: [{name: u, user: {tokenFile: tok}}]\n"
			      "contexts: [{name: x, context: {cluster: nope}}]\n");
	assert_true(asprintf(&list, "%s:%s/absent:%s", c1, dir, c2) > 0);
	assert_int_equal(kubeconfig_load(list, NULL, &a, err, sizeof(err)), 0);
	assert_string_equal(a->ca_file, ca);
	assert_string_equal(a->server, "https://a:1");
	assert_non_null(strstr(a->token_file, "/tok"));
	kube_auth_free(a);
	assert_int_equal(kubeconfig_load(ca + 0, NULL, &a, err, sizeof(err)) < 0, 1);
	unlink(ca);
	unlink(c1);
	unlink(c2);
	rmdir(dir);
	free(ca);
	free(c1);
	free(c2);
	free(list);
}

static void in_cluster(void **state)
{
	char dir[] = "/tmp/kinfer-sa-XXXXXX";
	struct kube_auth *a = NULL;
	char err[512];
	(void)state;
	assert_non_null(mkdtemp(dir));
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -ENOENT);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/token cannot be read"));
	char *t = write_file(dir, "token", "tok\n");
	char *c = write_file(dir, "ca.crt", "PEM");
	char *n = write_file(dir, "namespace", "kinfer-system\n");
	assert_int_equal(kube_auth_in_cluster(dir, &a, err, sizeof(err)), 0);
	assert_string_equal(a->server, "https://[fd00::1]:443");
	assert_string_equal(a->namespace, "kinfer-system");
	assert_string_equal(a->token_file, t);
	assert_string_equal(a->ca_file, c);
	kube_auth_free(a);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unlink(t);
	unlink(c);
	unlink(n);
	rmdir(dir);
	free(t);
	free(c);
	free(n);
}

int tests_kubeconfig(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(current_context),
		cmocka_unit_test(explicit_context),
		cmocka_unit_test(broken_files_name_the_field),
		cmocka_unit_test(relative_paths_and_merge),
		cmocka_unit_test(in_cluster),
	};
	return cmocka_run_group_tests_name("kubeconfig", tests, NULL, NULL);
}
