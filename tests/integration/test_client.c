/*
 * The API client against a real kube-apiserver (v1.33, built from its Go
 * module by tests/cluster/build.sh): every verb, the errors the server
 * really sends, paging, and kubectl seeing what we wrote.
 */
#include "itest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ns[64];
static struct kube_client *kc;

static int setup(void **state)
{
	(void)state;
	kc = itest_client(-1);
	itest_namespace(kc, "client", ns, sizeof(ns));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_namespace_delete(kc, ns);
	kube_client_free(kc);
	return 0;
}

static const char *jstr(json_object *o, const char *path)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, k, &o))
			return NULL;
	return o ? json_object_get_string(o) : NULL;
}

static json_object *configmap(const char *name, const char *key, const char *value)
{
	json_object *o = json_object_new_object(), *m = json_object_new_object(),
		    *d = json_object_new_object();
	json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(o, "kind", json_object_new_string("ConfigMap"));
	json_object_object_add(m, "name", json_object_new_string(name));
	json_object_object_add(o, "metadata", m);
	json_object_object_add(d, key, json_object_new_string(value));
	json_object_object_add(o, "data", d);
	return o;
}

static void server_version(void **state)
{
	char v[64];
	struct kube_status st;
	(void)state;
	assert_int_equal(kube_server_version(kc, v, sizeof(v), &st), 0);
	assert_string_equal(v, "v1.33.13");
	/* kube-apiserver offers HTTP/2 over TLS: the client takes it. */
	assert_int_equal(st.http_version, 20);
}

static void configmap_crud(void **state)
{
	json_object *body = configmap("crud", "k", "v1"), *o = NULL, *o2 = NULL;
	struct kube_status st;
	char rv[32], uid[64];
	int status;
	(void)state;

	assert_int_equal(kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, body, NULL, &o, &st),
			 0);
	assert_int_equal(st.code, 201);
	snprintf(uid, sizeof(uid), "%s", jstr(o, "metadata.uid"));
	snprintf(rv, sizeof(rv), "%s", jstr(o, "metadata.resourceVersion"));
	json_object_put(o);

	/* Create again: AlreadyExists, with the server's words. */
	assert_int_equal(kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, body, NULL, NULL, &st),
			 -EEXIST);
	assert_int_equal(st.code, 409);
	assert_string_equal(st.message, "configmaps \"crud\" already exists");

	/* kubectl sees what we wrote. */
	char *out = itest_kubectl(&status, "-n %s get configmap crud -o jsonpath={.data.k}", ns);
	assert_int_equal(status, 0);
	assert_string_equal(out, "v1");
	free(out);

	/* Update with the current resourceVersion, then a stale one. */
	assert_int_equal(kube_get(kc, &kube_res_configmaps, ns, "crud", NULL, &o, &st), 0);
	json_object_object_add(json_object_object_get(o, "data"), "k", json_object_new_string("v2"));
	assert_int_equal(kube_update(kc, &kube_res_configmaps, ns, "crud", NULL, o, NULL, &o2, &st),
			 0);
	assert_string_equal(jstr(o2, "data.k"), "v2");
	assert_string_not_equal(jstr(o2, "metadata.resourceVersion"), rv);
	json_object_put(o2);
	/* o still carries the old resourceVersion: a Conflict comes back. */
	assert_int_equal(kube_update(kc, &kube_res_configmaps, ns, "crud", NULL, o, NULL, NULL, &st),
			 -ESTALE);
	assert_int_equal(st.code, 409);
	assert_int_equal(st.reason, KUBE_REASON_CONFLICT);
	assert_non_null(strstr(st.message, "the object has been modified"));
	assert_int_equal(st.attempts, 1); /* 409 is never retried */
	json_object_put(o);

	/* The three patch types. */
	assert_int_equal(kube_patch(kc, &kube_res_configmaps, ns, "crud", NULL, KUBE_PATCH_MERGE,
				    "{\"data\":{\"m\":\"merge\"}}", NULL, NULL, &st),
			 0);
	assert_int_equal(kube_patch(kc, &kube_res_configmaps, ns, "crud", NULL, KUBE_PATCH_JSON,
				    "[{\"op\":\"add\",\"path\":\"/data/j\",\"value\":\"json\"}]",
				    NULL, NULL, &st),
			 0);
	assert_int_equal(kube_patch(kc, &kube_res_configmaps, ns, "crud", NULL, KUBE_PATCH_STRATEGIC,
				    "{\"data\":{\"s\":\"smp\"}}", NULL, &o, &st),
			 0);
	assert_string_equal(jstr(o, "data.m"), "merge");
	assert_string_equal(jstr(o, "data.j"), "json");
	assert_string_equal(jstr(o, "data.s"), "smp");
	json_object_put(o);
	/* A JSON patch whose test fails is refused, not half-applied. */
	assert_true(kube_patch(kc, &kube_res_configmaps, ns, "crud", NULL, KUBE_PATCH_JSON,
			       "[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"nope\"},"
			       "{\"op\":\"remove\",\"path\":\"/data/m\"}]",
			       NULL, NULL, &st) < 0);
	out = itest_kubectl(&status, "-n %s get configmap crud -o jsonpath={.data.m}", ns);
	assert_string_equal(out, "merge");
	free(out);

	/* Delete with a wrong uid precondition: refused; with the right one: gone. */
	struct kube_opts pre = { .precondition_uid = "00000000-0000-0000-0000-000000000000" };
	assert_int_equal(kube_delete(kc, &kube_res_configmaps, ns, "crud", &pre, NULL, &st), -ESTALE);
	if (!strstr(st.message, "does not match the UID in record"))
		fail_msg("precondition message: %s", st.message);
	pre.precondition_uid = uid;
	assert_int_equal(kube_delete(kc, &kube_res_configmaps, ns, "crud", &pre, NULL, &st), 0);
	assert_int_equal(kube_get(kc, &kube_res_configmaps, ns, "crud", NULL, NULL, &st), -ENOENT);
	assert_int_equal(st.code, 404);
	assert_string_equal(st.message, "configmaps \"crud\" not found");
	out = itest_kubectl(&status, "-n %s get configmap crud", ns);
	assert_int_not_equal(status, 0);
	assert_non_null(strstr(out, "not found"));
	free(out);
	json_object_put(body);
}

static void invalid_is_explained(void **state)
{
	json_object *body = configmap("Bad_Name", "k", "v");
	struct kube_status st;
	(void)state;
	assert_int_equal(kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, body, NULL, NULL, &st),
			 -EINVAL);
	assert_int_equal(st.code, 422);
	assert_int_equal(st.reason, KUBE_REASON_INVALID);
	assert_non_null(strstr(st.message, "metadata.name: Invalid value: \"Bad_Name\""));
	json_object_put(body);
}

static long managers(json_object *o, const char *name)
{
	json_object *mf;
	long n = 0;
	json_object *meta = json_object_object_get(o, "metadata");
	if (!json_object_object_get_ex(meta, "managedFields", &mf))
		return 0;
	for (size_t i = 0; i < json_object_array_length(mf); i++)
		if (strcmp(jstr(json_object_array_get_idx(mf, i), "manager"), name) == 0)
			n++;
	return n;
}

static void server_side_apply_is_idempotent(void **state)
{
	json_object *body = configmap("applied", "k", "v"), *a = NULL, *b = NULL;
	struct kube_opts o = { .field_manager = "kinfer-operator", .force = true };
	struct kube_status st;
	char rv[32];
	(void)state;
	assert_int_equal(kube_apply(kc, &kube_res_configmaps, ns, "applied", NULL, body, &o, &a, &st),
			 0);
	assert_int_equal(st.code, 201);
	snprintf(rv, sizeof(rv), "%s", jstr(a, "metadata.resourceVersion"));
	assert_int_equal(managers(a, "kinfer-operator"), 1);
	/* The same apply again changes nothing: same resourceVersion. */
	assert_int_equal(kube_apply(kc, &kube_res_configmaps, ns, "applied", NULL, body, &o, &b, &st),
			 0);
	assert_int_equal(st.code, 200);
	assert_string_equal(jstr(b, "metadata.resourceVersion"), rv);
	json_object_put(b);
	/* Without a field manager the call is refused before it is sent. */
	struct kube_opts none = { 0 };
	assert_int_equal(kube_apply(kc, &kube_res_configmaps, ns, "applied", NULL, body, &none,
				    NULL, &st),
			 -EINVAL);
	json_object_put(a);
	json_object_put(body);
}

struct counter {
	int items;
	int resets;
	char first[64];
};

static int count_item(json_object *item, void *ud)
{
	struct counter *c = ud;
	if (!item) {
		c->resets++;
		c->items = 0;
		return 0;
	}
	/* kube-root-ca.crt is published into every namespace by the
	 * controller-manager, some time after the namespace appears: not
	 * counted, so the test does not race it. */
	const char *name = jstr(item, "metadata.name");
	if (name && strcmp(name, "kube-root-ca.crt") == 0)
		return 0;
	if (c->items++ == 0)
		snprintf(c->first, sizeof(c->first), "%s", jstr(item, "metadata.name"));
	return 0;
}

static void paging_through_1200(void **state)
{
	char pns[64], name[32], rv[32];
	struct kube_status st;
	struct counter cnt = { 0 };
	struct kube_opts o = { .limit = 100 };
	json_object *page = NULL;
	(void)state;
	itest_namespace(kc, "paging", pns, sizeof(pns));
	for (int i = 0; i < 1200; i++) {
		snprintf(name, sizeof(name), "cm-%04d", i);
		json_object *b = configmap(name, "i", name);
		if (kube_create(kc, &kube_res_configmaps, pns, NULL, NULL, b, NULL, NULL, &st) < 0)
			fail_msg("create %s: %s", name, st.message);
		json_object_put(b);
	}
	/* One page: 100 items and a continue token. */
	assert_int_equal(kube_list(kc, &kube_res_configmaps, pns, &o, &page, &st), 0);
	assert_int_equal(json_object_array_length(json_object_object_get(page, "items")), 100);
	assert_non_null(jstr(page, "metadata.continue"));
	json_object_put(page);
	/* All pages (and, maybe, kube-root-ca.crt). */
	assert_int_equal(kube_list_all(kc, &kube_res_configmaps, pns, &o, count_item, &cnt, rv,
				       sizeof(rv), &st),
			 0);
	assert_int_equal(cnt.items, 1200);
	assert_int_equal(cnt.resets, 0);
	assert_string_equal(cnt.first, "cm-0000");
	assert_true(strlen(rv) > 0);
	int status;
	char *out = itest_kubectl(
		&status, "-n %s get configmaps --no-headers -o name | grep -c '^configmap/cm-'", pns);
	assert_int_equal(atoi(out), 1200);
	free(out);
	struct kube_opts bg = { .propagation_policy = "Background" };
	assert_int_equal(kube_delete(kc, &kube_res_namespaces, NULL, pns, &bg, NULL, &st), 0);
}

static void scale_and_status_subresources(void **state)
{
	const char *dep =
		"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"
		"\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
		"\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
		"\"spec\":{\"schedulerName\":\"nobody\",\"containers\":[{\"name\":\"c\",\"image\":\"registry.invalid/x:1\"}]}}}}";
	json_object *body = json_tokener_parse(dep), *scale = NULL, *o = NULL;
	struct kube_status st;
	(void)state;
	assert_int_equal(kube_create(kc, &kube_res_deployments, ns, NULL, NULL, body, NULL, NULL, &st),
			 0);
	/* Read-modify-write with the resourceVersion: the controller-manager
	 * writes the new Deployment too, so a Conflict means read again. */
	int r = -ESTALE;
	for (int i = 0; i < 10 && r == -ESTALE; i++) {
		json_object_put(scale);
		scale = NULL;
		assert_int_equal(kube_get(kc, &kube_res_deployments, ns, "web", "scale", &scale, &st),
				 0);
		assert_string_equal(jstr(scale, "kind"), "Scale");
		assert_string_equal(jstr(scale, "spec.replicas"), "1");
		json_object_object_add(json_object_object_get(scale, "spec"), "replicas",
				       json_object_new_int(3));
		r = kube_update(kc, &kube_res_deployments, ns, "web", "scale", scale, NULL, NULL,
				&st);
	}
	assert_int_equal(r, 0);
	assert_int_equal(kube_get(kc, &kube_res_deployments, ns, "web", NULL, &o, &st), 0);
	assert_string_equal(jstr(o, "spec.replicas"), "3");
	json_object_put(o);
	/* A merge patch on /status touches status only. */
	assert_int_equal(kube_patch(kc, &kube_res_deployments, ns, "web", "status", KUBE_PATCH_MERGE,
				    "{\"status\":{\"observedGeneration\":99},\"spec\":{\"replicas\":7}}",
				    NULL, &o, &st),
			 0);
	assert_string_equal(jstr(o, "status.observedGeneration"), "99");
	assert_string_equal(jstr(o, "spec.replicas"), "3");
	json_object_put(o);
	json_object_put(scale);
	json_object_put(body);
}

static void bind_pod_to_node(void **state)
{
	const char *pod =
		"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bindme\"},"
		"\"spec\":{\"schedulerName\":\"kinfer-test\",\"containers\":[{\"name\":\"c\",\"image\":\"registry.invalid/x:1\"}]}}";
	json_object *body = json_tokener_parse(pod), *o = NULL, *nodes = NULL;
	struct kube_status st;
	char node[128], uid[64];
	(void)state;
	assert_int_equal(kube_list(kc, &kube_res_nodes, NULL, NULL, &nodes, &st), 0);
	json_object *items = json_object_object_get(nodes, "items");
	assert_true(json_object_array_length(items) > 0);
	snprintf(node, sizeof(node), "%s",
		 jstr(json_object_array_get_idx(items, 0), "metadata.name"));
	json_object_put(nodes);
	assert_int_equal(kube_create(kc, &kube_res_pods, ns, NULL, NULL, body, NULL, &o, &st), 0);
	snprintf(uid, sizeof(uid), "%s", jstr(o, "metadata.uid"));
	json_object_put(o);
	assert_int_equal(kube_bind_pod(kc, ns, "bindme", uid, node, &st), 0);
	assert_int_equal(kube_get(kc, &kube_res_pods, ns, "bindme", NULL, &o, &st), 0);
	assert_string_equal(jstr(o, "spec.nodeName"), node);
	json_object_put(o);
	/* Binding twice is refused by the server. */
	assert_true(kube_bind_pod(kc, ns, "bindme", uid, node, &st) < 0);
	assert_int_equal(st.code, 409);
	json_object_put(body);
}

struct watch_state {
	volatile int stop;
	int added, deleted;
	long error_code;
	char rv[32];
	int result;
};

static int on_event(const char *type, json_object *obj, void *ud)
{
	struct watch_state *w = ud;
	const char *name = jstr(obj, "metadata.name");
	if (strcmp(type, "ERROR") == 0) {
		const char *code = jstr(obj, "code");
		w->error_code = code ? atol(code) : -1;
		return -EIDRM;
	}
	if (!name || strcmp(name, "watched") != 0)
		return 0;
	if (strcmp(type, "ADDED") == 0)
		w->added++;
	if (strcmp(type, "DELETED") == 0) {
		w->deleted++;
		w->stop = 1;
	}
	return 0;
}

static void *watch_thread(void *ud)
{
	struct watch_state *w = ud;
	struct kube_opts o = { .resource_version = w->rv,
			       .allow_bookmarks = true,
			       .timeout_seconds = 30 };
	w->result = kube_watch(kc, &kube_res_configmaps, ns, &o, on_event, w, &w->stop, NULL);
	return NULL;
}

static void watch_sees_changes(void **state)
{
	struct watch_state w = { 0 };
	json_object *list = NULL, *body = configmap("watched", "k", "v");
	struct kube_status st;
	pthread_t t;
	(void)state;
	assert_int_equal(kube_list(kc, &kube_res_configmaps, ns, NULL, &list, &st), 0);
	snprintf(w.rv, sizeof(w.rv), "%s", jstr(list, "metadata.resourceVersion"));
	json_object_put(list);
	assert_int_equal(pthread_create(&t, NULL, watch_thread, &w), 0);
	usleep(300000);
	assert_int_equal(kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, body, NULL, NULL, &st),
			 0);
	assert_int_equal(kube_delete(kc, &kube_res_configmaps, ns, "watched", NULL, NULL, &st), 0);
	/* The DELETED event sets stop; bounded by the watch's own timeout. */
	pthread_join(t, NULL);
	assert_int_equal(w.result, 0);
	assert_int_equal(w.added, 1);
	assert_int_equal(w.deleted, 1);
	json_object_put(body);
}

static void watch_with_expired_version_is_gone(void **state)
{
	struct kube_opts o = { .resource_version = "1", .timeout_seconds = 5 };
	struct watch_state w = { 0 };
	struct kube_status st;
	(void)state;
	/* Since 1.27 an expired RV arrives as an ERROR event in a 200 stream, or
	 * as a 410 answer; either way the caller learns the version is gone. */
	int r = kube_watch(kc, &kube_res_configmaps, ns, &o, on_event, &w, NULL, &st);
	if (!(r == -EIDRM && (w.error_code == 410 || st.code == 410)))
		fail_msg("want 410 Gone, got r=%d event code %ld http %ld", r, w.error_code, st.code);
}

int itests_client(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(server_version),
		cmocka_unit_test(configmap_crud),
		cmocka_unit_test(invalid_is_explained),
		cmocka_unit_test(server_side_apply_is_idempotent),
		cmocka_unit_test(paging_through_1200),
		cmocka_unit_test(scale_and_status_subresources),
		cmocka_unit_test(bind_pod_to_node),
		cmocka_unit_test(watch_sees_changes),
		cmocka_unit_test(watch_with_expired_version_is_gone),
	};
	return cmocka_run_group_tests_name("client", tests, setup, teardown);
}
