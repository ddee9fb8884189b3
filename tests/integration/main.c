/*
 * Integration test runner: `kinfer_integration GROUP`. The cluster comes
 * from KINFER_TEST_KUBECONFIG, which the ctest fixture set up.
 */
#include "itest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const struct {
	const char *name;
	int (*run)(void);
} groups[] = {
#define GROUP(name) { #name, itests_##name },
#include "test-list.h"
#undef GROUP
};

struct kube_client *itest_client(double qps)
{
	const char *kc = getenv("KINFER_TEST_KUBECONFIG");
	struct kube_auth *auth = NULL;
	struct kube_client *c = NULL;
	struct kube_client_options o = { .qps = qps, .burst = 100 };
	char err[512];

	if (!kc)
		fail_msg("KINFER_TEST_KUBECONFIG is not set (run through ctest)");
	if (kubeconfig_load(kc, NULL, &auth, err, sizeof(err)) < 0)
		fail_msg("kubeconfig: %s", err);
	assert_int_equal(kube_client_new(auth, &o, &c), 0);
	kube_auth_free(auth);
	return c;
}

char *itest_kubectl(int *ret_status, const char *fmt, ...)
{
	const char *dir = getenv("KINFER_TEST_CLUSTER");
	char args[2048], *cmd, *out = NULL;
	size_t len = 0, cap = 0;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	/* env holds BIN and KUBECONFIG for this cluster. */
	if (asprintf(&cmd, "set -a; . '%s/env'; set +a; \"$BIN/kubectl\" %s 2>&1", dir, args) < 0)
		fail_msg("out of memory");
	p = popen(cmd, "r");
	free(cmd);
	assert_non_null(p);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		size_t n = fread(out + len, 1, 4096, p);
		len += n;
		if (n == 0)
			break;
	}
	out[len] = '\0';
	int st = pclose(p);
	*ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

void itest_namespace(struct kube_client *c, const char *prefix, char *buf, size_t len)
{
	json_object *ns = json_object_new_object(), *meta = json_object_new_object();
	struct kube_status st;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "%s-%d-%ld", prefix, (int)getpid(), ts.tv_nsec % 100000);
	json_object_object_add(meta, "name", json_object_new_string(buf));
	json_object_object_add(ns, "metadata", meta);
	if (kube_create(c, &kube_res_namespaces, NULL, NULL, NULL, ns, NULL, NULL, &st) < 0)
		fail_msg("create namespace %s: %s", buf, st.message);
	json_object_put(ns);
}

void itest_namespace_delete(struct kube_client *c, const char *ns)
{
	struct kube_opts o = { .propagation_policy = "Background" };
	kube_delete(c, &kube_res_namespaces, NULL, ns, &o, NULL, NULL);
}

int main(int argc, char **argv)
{
	int failed = 0, ran = 0;
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (argc > 1 && strcmp(argv[1], groups[i].name) != 0)
			continue;
		failed += groups[i].run();
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "no integration group named %s\n", argc > 1 ? argv[1] : "");
		return 2;
	}
	return failed ? 1 : 0;
}
