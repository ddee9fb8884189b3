/*
 * informer: one object that cannot be read never stops an informer (issue
 * 12 item 1). A watch stream and a LIST page with a Pod nested past
 * KUBE_JSON_MAX_DEPTH (and one past any tokener, 100000 levels) between
 * two good ones: the good ones are cached, the bad one is skipped and
 * counted, the resourceVersion moves past it, a DELETED event of the bad
 * one still removes it. Built from tests/data/pod.json (recorded from a
 * real kube-apiserver); on the old code the stream was "unusable" and the
 * page "Bad message" (relist forever).
 */
#include "unit.h"

#include "informer.h"
#include "jsonscan.h"
#include "kinds.h"
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	struct kube_client *client;
	struct metrics *metrics;
	struct informer_set *set;
	struct informer *inf;
};

static int setup(void **state)
{
	static struct fixture f;
	struct kube_auth auth = { .server = "https://127.0.0.1:1" };
	struct informer_options o = { .kind = &kind_pods };

	memset(&f, 0, sizeof(f));
	if (test_rcu_setup(state) < 0)
		return -1;
	if (kube_client_new(&auth, NULL, &f.client) < 0 || metrics_new(&f.metrics) < 0 ||
	    informer_set_new(f.client, test_interns, f.metrics, &f.set) < 0 ||
	    informer_add(f.set, &o, &f.inf) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	informer_set_free(f->set);
	metrics_free(f->metrics);
	kube_client_free(f->client);
	return test_rcu_teardown(state);
}

/* pod.json renamed, with resourceVersion rv and, with depth > 0, a field
 * "x" nested depth objects deep (the object itself is one more level). */
static char *pod_text(const char *name, const char *rv, size_t depth)
{
	char *s = test_read_data("pod.json", NULL);
	json_object *o = json_tokener_parse(s), *meta;
	free(s);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "metadata", &meta));
	json_object_object_add(meta, "name", json_object_new_string(name));
	json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t tl = strlen(txt), n = tl + depth * 7 + 16, k = 0;
	char *out = malloc(n);
	assert_non_null(out);
	out[k++] = '{';
	if (depth) {
		k += (size_t)snprintf(out + k, n - k, "\"x\":");
		for (size_t i = 0; i < depth; i++)
			k += (size_t)snprintf(out + k, n - k, i + 1 < depth ? "{\"a\":" : "{}");
		for (size_t i = 1; i < depth; i++)
			out[k++] = '}';
		out[k++] = ',';
	}
	memcpy(out + k, txt + 1, tl - 1);
	out[k + tl - 1] = '\0';
	json_object_put(o);
	return out;
}

static void feed_event(struct informer *inf, const char *type, char *obj, int want)
{
	size_t n = strlen(obj) + 64;
	char *line = malloc(n);
	assert_non_null(line);
	snprintf(line, n, "{\"type\":\"%s\",\"object\":%s}\n", type, obj);
	assert_int_equal(informer_feed(inf, line, strlen(line)), want);
	free(line);
	free(obj);
}

static bool cached(struct informer *inf, const char *key)
{
	cache_read_lock();
	bool r = cache_get(informer_cache(inf), key) != NULL;
	cache_read_unlock();
	return r;
}

static double skipped_metric(struct fixture *f, const char *reason)
{
	char *txt, want[160];
	size_t len;
	double v = 0;
	assert_int_equal(metrics_render(f->metrics, &txt, &len), 0);
	snprintf(want, sizeof(want),
		 "kinfer_informer_objects_skipped_total{kind=\"Pod\",reason=\"%s\"} ", reason);
	const char *p = strstr(txt, want);
	if (p)
		v = strtod(p + strlen(want), NULL);
	free(txt);
	return v;
}

static void watch_stream_skips_deep_object(void **state)
{
	struct fixture *f = *state;
	struct informer_stats st;

	feed_event(f->inf, "ADDED", pod_text("good-1", "101", 0), 0);
	/* Past the limit (41 levels), then past json-c's tokener (100001). */
	feed_event(f->inf, "ADDED", pod_text("deep", "102", 40), 0);
	feed_event(f->inf, "ADDED", pod_text("deeper", "103", 100000), 0);
	feed_event(f->inf, "ADDED", pod_text("good-2", "104", 0), 0);
	assert_true(cached(f->inf, "default/good-1"));
	assert_true(cached(f->inf, "default/good-2"));
	assert_false(cached(f->inf, "default/deep"));
	assert_false(cached(f->inf, "default/deeper"));
	informer_stats(f->inf, &st);
	assert_int_equal(st.skipped, 2);
	assert_string_equal(st.resource_version, "104");
	assert_true(skipped_metric(f, "too_deep") == 2);

	/* A readable object that turns unreadable keeps its last version. */
	feed_event(f->inf, "MODIFIED", pod_text("good-1", "105", 60), 0);
	assert_true(cached(f->inf, "default/good-1"));
	informer_stats(f->inf, &st);
	assert_string_equal(st.resource_version, "105");
	/* Just under the limit is read: 31 nested + the object = 32. */
	feed_event(f->inf, "ADDED", pod_text("edge", "106", 31), 0);
	assert_true(cached(f->inf, "default/edge"));
	feed_event(f->inf, "ADDED", pod_text("over", "107", 32), 0);
	assert_false(cached(f->inf, "default/over"));
	/* Deleting an unreadable object still removes it. */
	feed_event(f->inf, "DELETED", pod_text("good-1", "108", 60), 0);
	assert_false(cached(f->inf, "default/good-1"));
	assert_true(skipped_metric(f, "too_deep") == 5);

	/* An object of the wrong shape is skipped as unprojectable. */
	feed_event(f->inf, "ADDED",
		   strdup("{\"metadata\":{\"name\":\"odd\",\"namespace\":\"default\","
			  "\"resourceVersion\":\"109\"},\"spec\":\"not an object\","
			  "\"status\":[1]}"),
		   0);
	informer_stats(f->inf, &st);
	assert_string_equal(st.resource_version, "109");
	assert_true(cached(f->inf, "default/good-2"));

	/* What is not an event at all still makes the stream unusable. */
	assert_int_equal(informer_feed(f->inf, "{\"type\":\n", 9), -EBADMSG);
}

static void list_page_skips_deep_item(void **state)
{
	struct fixture *f = *state;
	char *a = pod_text("p-1", "201", 0), *b = pod_text("p-deep", "202", 40),
	     *c = pod_text("p-deeper", "203", 100000), *d = pod_text("p-2", "204", 0);
	size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 256;
	char *page = malloc(n);
	assert_non_null(page);
	snprintf(page, n,
		 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
		 "{\"resourceVersion\":\"300\"},\"items\":[%s, %s,%s ,%s]}",
		 a, b, c, d);
	assert_int_equal(informer_feed_page(f->inf, page, strlen(page)), 0);
	assert_true(cached(f->inf, "default/p-1"));
	assert_true(cached(f->inf, "default/p-2"));
	assert_false(cached(f->inf, "default/p-deep"));
	assert_true(cache_synced(informer_cache(f->inf)));
	/* The list did not mention the stream's objects: they are gone. */
	assert_false(cached(f->inf, "default/good-2"));
	struct informer_stats st;
	informer_stats(f->inf, &st);
	assert_string_equal(st.resource_version, "300");
	/* A page that is not JSON is still refused as a whole. */
	assert_int_equal(informer_feed_page(f->inf, "{\"items\":[{", 11), -EBADMSG);
	free(page);
	free(a);
	free(b);
	free(c);
	free(d);
}

static void scanner(void **state)
{
	const char *doc = " {\"a\" : {\"b\": [1, {\"c\":\"x\\\"y\"}, [] ]}, \"s\":\"\\u0041z\"} ";
	char out[32], path[64];
	size_t s, e, cur, as, ae;
	(void)state;

	assert_int_equal(jsonscan_path(doc, strlen(doc), 0, "a.b", &as, &ae), 0);
	assert_int_equal(doc[as], '[');
	cur = as;
	int n = 0;
	while (jsonscan_next(doc, ae, &cur, &s, &e) == 1)
		n++;
	assert_int_equal(n, 3);
	assert_int_equal(jsonscan_string(doc, strlen(doc), 0, "s", out, sizeof(out)), 0);
	assert_string_equal(out, "Az");
	assert_int_equal(jsonscan_path(doc, strlen(doc), 0, "a.z", &s, &e), -ENOENT);
	assert_int_equal(jsonscan_path("{\"a\":", 5, 0, "a", &s, &e), -EBADMSG);
	assert_int_equal(jsonscan_depth(doc, strlen(doc), 0, 3, false, path, sizeof(path)), 1);
	assert_string_equal(path, "a.b[1]");
	assert_int_equal(jsonscan_depth(doc, strlen(doc), 0, 4, false, path, sizeof(path)), 0);
	/* managedFields are not counted. */
	const char *mf = "{\"metadata\":{\"managedFields\":[{\"f\":{\"g\":{}}}]},\"spec\":{}}";
	assert_int_equal(jsonscan_depth(mf, strlen(mf), 0, 2, true, path, sizeof(path)), 0);
	assert_int_equal(jsonscan_depth(mf, strlen(mf), 0, 2, false, path, sizeof(path)), 1);
	assert_string_equal(path, "metadata.managedFields");
}

/*
 * metadata.managedFields is cut from the text before json-c parses it
 * (informer.c without_managed_fields): nothing after the cut may move.
 * A Pod whose managedFields holds what could confuse a cut (brackets and
 * quotes inside strings, escapes, nesting, a "managedFields" key of its
 * own) followed in metadata by its labels: from a watch event and from a
 * LIST page the informer caches what json-c reads from the whole text.
 */
static char *tricky_pod(const char *name)
{
	char *s = test_read_data("pod.json", NULL);
	json_object *o = json_tokener_parse(s), *meta, *labels, *mf;
	free(s);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "metadata", &meta));
	assert_true(json_object_object_get_ex(meta, "labels", &labels));
	json_object_get(labels);
	json_object_object_del(meta, "labels");
	json_object_object_del(meta, "managedFields");
	json_object_object_add(meta, "name", json_object_new_string(name));
	mf = json_tokener_parse(
		"[{\"manager\":\"a\\\"]},{\",\"fieldsV1\":{\"f:x\":{\"managedFields\":[[[]]]},"
		"\"f:y\":\"}]\\\\\"}},{\"managedFields\":{}}]");
	assert_non_null(mf);
	json_object_object_add(meta, "managedFields", mf);
	json_object_object_add(labels, "managedFields", json_object_new_string("kept"));
	json_object_object_add(meta, "labels", labels); /* after managedFields */
	char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	assert_non_null(out);
	return out;
}

struct pod_fields {
	bool found;
	char service[64], node[64], owner[128], uid[CACHE_UID_MAX], rv[CACHE_RV_MAX];
	int phase, gpu;
};

/* Read outside the assertions: a failed assertion inside a read-side
 * section would leave it open and hang the teardown's grace period. */
static void pod_fields(struct cache *c, const char *key, struct pod_fields *f)
{
	memset(f, 0, sizeof(*f));
	cache_read_lock();
	const struct kpod *p = (const struct kpod *)cache_get(c, key);
	if (p) {
		f->found = true;
		snprintf(f->service, sizeof(f->service), "%s", p->service ? p->service : "");
		snprintf(f->node, sizeof(f->node), "%s", p->node ? p->node : "");
		snprintf(f->owner, sizeof(f->owner), "%s",
			 p->meta.controller_name ? p->meta.controller_name : "");
		cache_obj_uid_copy(&p->meta, f->uid, sizeof(f->uid));
		cache_obj_rv_copy(&p->meta, f->rv, sizeof(f->rv));
		f->phase = (int)p->phase;
		f->gpu = p->gpu;
	}
	cache_read_unlock();
}

static void expect_same_pod(struct informer *inf, const char *key, const char *text)
{
	struct cache *c;
	struct cache_obj *want, *old = NULL;
	struct pod_fields g, w;
	json_object *j = json_tokener_parse(text);

	assert_non_null(j);
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	assert_int_equal(cache_project(c, j, &want), 0);
	json_object_put(j);
	cache_publish(c, want, &old);
	pod_fields(c, key, &w);
	pod_fields(informer_cache(inf), key, &g);
	cache_free(c);
	assert_true(w.found);
	assert_true(g.found);
	assert_string_equal(w.service, "llm-7b");
	assert_string_equal(g.service, w.service); /* a label after the cut */
	assert_string_equal(g.node, w.node);
	assert_string_equal(g.owner, w.owner);
	assert_string_equal(g.uid, w.uid);
	assert_string_equal(g.rv, w.rv);
	assert_int_equal(g.phase, w.phase);
	assert_int_equal(g.gpu, w.gpu);
}

static void managed_fields_are_not_decoded(void **state)
{
	struct fixture *f = *state;
	char *a = tricky_pod("mf-1"), *b = tricky_pod("mf-2");
	size_t mf[2], end;
	char path[64];

	/* The scanner finds the range: from after the colon to the array's end. */
	assert_int_equal(jsonscan_depth_end(a, strlen(a), 0, KUBE_JSON_MAX_DEPTH, true, path,
					    sizeof(path), &end, mf),
			 0);
	assert_int_equal(end, strlen(a));
	assert_true(mf[1] > mf[0]);
	assert_memory_equal(a + mf[0] - 16, "\"managedFields\":", 16);
	assert_int_equal(a[mf[0]], '[');
	assert_int_equal(a[mf[1] - 1], ']');
	assert_memory_equal(a + mf[1], ",\"labels\":", 10);
	/* None in an object without one, nor outside metadata. */
	const char *none = "{\"spec\":{\"managedFields\":[1]},\"metadata\":{\"name\":\"x\"}}";
	assert_int_equal(jsonscan_depth_end(none, strlen(none), 0, 8, true, path, sizeof(path),
					    &end, mf),
			 0);
	assert_int_equal(mf[0], 0);
	assert_int_equal(mf[1], 0);

	char *ev = strdup(a);
	assert_non_null(ev);
	feed_event(f->inf, "ADDED", ev, 0);
	expect_same_pod(f->inf, "default/mf-1", a);

	size_t n = strlen(a) + strlen(b) + 128;
	char *page = malloc(n);
	assert_non_null(page);
	snprintf(page, n,
		 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
		 "{\"resourceVersion\":\"900\"},\"items\":[%s,%s]}",
		 a, b);
	assert_int_equal(informer_feed_page(f->inf, page, strlen(page)), 0);
	expect_same_pod(f->inf, "default/mf-1", a);
	expect_same_pod(f->inf, "default/mf-2", b);
	free(page);
	free(a);
	free(b);
}

int tests_informer(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scanner),
		cmocka_unit_test(watch_stream_skips_deep_object),
		cmocka_unit_test(list_page_skips_deep_item),
		cmocka_unit_test(managed_fields_are_not_decoded),
	};
	int r = cmocka_run_group_tests_name("informer", tests, setup, teardown);
	return r;
}
