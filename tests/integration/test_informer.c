/*
 * Informers against the real control plane: the cache equals a fresh LIST
 * after a storm of writes from several threads; after kube-apiserver is
 * killed, objects are deleted behind its back in etcd and etcd is
 * compacted (so the informer's resourceVersion is gone: 410), the restarted
 * server's relist delivers those deletes to the handlers.
 */
#include "itest.h"

#include "informer.h"
#include "kinds.h"
#include "metrics.h"

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
	rcu_register_thread();
	kc = itest_client(-1);
	itest_namespace(kc, "informer", ns, sizeof(ns));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_namespace_delete(kc, ns);
	kube_client_free(kc);
	rcu_unregister_thread();
	return 0;
}

/* What the handlers saw, for assertions (written on the I/O thread). */
struct seen {
	pthread_mutex_t lock;
	int adds, updates, deletes, resyncs;
	char deleted[64][64];
	int n_deleted;
};

static void on_change(void *ud, enum informer_event ev, const struct cache_obj *old,
		      const struct cache_obj *obj)
{
	struct seen *s = ud;
	(void)obj;
	pthread_mutex_lock(&s->lock);
	switch (ev) {
	case INFORMER_ADD:
		s->adds++;
		break;
	case INFORMER_UPDATE:
		s->updates++;
		break;
	case INFORMER_RESYNC:
		s->resyncs++;
		break;
	case INFORMER_DELETE:
		s->deletes++;
		if (s->n_deleted < 64)
			snprintf(s->deleted[s->n_deleted++], 64, "%s", cache_obj_name(old));
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

static json_object *cm(const char *name, int v)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "{\"metadata\":{\"name\":\"%s\"},\"data\":{\"v\":\"%d\"}}", name,
		 v);
	return json_tokener_parse(buf);
}

/* Does the cache hold exactly the LIST's names and resourceVersions? */
struct cmp {
	struct cache *c;
	int mismatches, items;
};

static int compare_item(json_object *item, void *ud)
{
	struct cmp *k = ud;
	char key[256];
	if (!item)
		return 0;
	snprintf(key, sizeof(key), "%s/%s", ns, cache_json_str(item, "metadata.name"));
	cache_read_lock();
	const struct cache_obj *o = cache_get(k->c, key);
	char rb[CACHE_RV_MAX];
	if (!o || strcmp(cache_obj_rv(o, rb), cache_json_str(item, "metadata.resourceVersion")) != 0)
		k->mismatches++;
	cache_read_unlock();
	k->items++;
	return 0;
}

static bool cache_equals_list(struct cache *c, int *ret_items)
{
	struct cmp k = { .c = c };
	struct kube_status st;
	if (kube_list_all(kc, &kube_res_configmaps, ns, NULL, compare_item, &k, NULL, 0, &st) < 0)
		return false;
	*ret_items = k.items;
	return k.mismatches == 0 && (size_t)k.items == cache_count(c);
}

static bool wait_equal(struct cache *c, int seconds, int *ret_items)
{
	for (int i = 0; i < seconds * 10; i++) {
		if (cache_equals_list(c, ret_items))
			return true;
		usleep(100000);
	}
	return false;
}

struct writer {
	int id;
	int ops;
};

static void *write_storm(void *ud)
{
	struct writer *w = ud;
	char name[64];
	unsigned seed = (unsigned)w->id * 7919u;
	for (int i = 0; i < w->ops; i++) {
		int k = (int)(rand_r(&seed) % 60), op = (int)(rand_r(&seed) % 3);
		snprintf(name, sizeof(name), "w%d-%d", w->id, k);
		json_object *b = cm(name, i);
		if (op == 0)
			kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, b, NULL, NULL, NULL);
		else if (op == 1)
			kube_patch(kc, &kube_res_configmaps, ns, name, NULL, KUBE_PATCH_MERGE,
				   json_object_to_json_string(b), NULL, NULL, NULL);
		else
			kube_delete(kc, &kube_res_configmaps, ns, name, NULL, NULL, NULL);
		json_object_put(b);
	}
	return NULL;
}

static struct informer_set *start_informer(struct informer **inf, struct seen *s,
					   struct intern **interns, struct metrics **m,
					   uint64_t resync_ns)
{
	struct informer_set *set;
	struct informer_options o = {
		.kind = &kind_configmaps, .namespace = ns, .page_size = 50, .resync_ns = resync_ns
	};
	assert_int_equal(intern_new(interns), 0);
	assert_int_equal(metrics_new(m), 0);
	assert_int_equal(informer_set_new(kc, *interns, *m, &set), 0);
	assert_int_equal(informer_add(set, &o, inf), 0);
	assert_int_equal(informer_add_handler(*inf, on_change, s), 0);
	assert_int_equal(informer_set_start(set), 0);
	assert_int_equal(informer_set_wait_synced(set, 30ULL * 1000000000ULL), 0);
	return set;
}

static void storm_then_equal_to_list(void **state)
{
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct informer *inf;
	struct intern *interns;
	struct metrics *m;
	pthread_t t[4];
	struct writer w[4];
	int items = 0;
	(void)state;

	struct informer_set *set = start_informer(&inf, &s, &interns, &m, 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer){ .id = i, .ops = 500 };
		pthread_create(&t[i], NULL, write_storm, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	if (!wait_equal(informer_cache(inf), 30, &items))
		fail_msg("cache differs from a fresh LIST after the storm");
	assert_true(items > 20);
	assert_true(s.adds > 0 && s.updates > 0 && s.deletes > 0);
	/* The metrics count the events. */
	char *text;
	size_t len;
	assert_int_equal(metrics_render(m, &text, &len), 0);
	assert_non_null(strstr(text, "kinfer_watch_events_total{kind=\"ConfigMap\",type=\"ADDED\"}"));
	free(text);
	informer_set_free(set);
	metrics_free(m);
	intern_free(interns);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void apiserver_restart_and_410_relist(void **state)
{
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct informer *inf;
	struct intern *interns;
	struct metrics *m;
	struct informer_stats before, after;
	const char *dir = getenv("KINFER_TEST_CLUSTER");
	const char *src = getenv("KINFER_SOURCE_DIR");
	char name[32];
	int items = 0;
	(void)state;

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "keep-%d", i);
		json_object *b = cm(name, i);
		assert_int_equal(kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, b, NULL,
					     NULL, NULL),
				 0);
		json_object_put(b);
	}
	struct informer_set *set = start_informer(&inf, &s, &interns, &m, 0);
	informer_stats(inf, &before);
	/* Kill the API server; while it is down, delete two objects straight
	 * from etcd and compact, so no watch can replay those deletes. */
	int rc = run("bash '%s/tests/integration/etcd-behind.sh' '%s' '%s' keep-3 keep-7", src, dir,
		     ns);
	assert_int_equal(rc, 0);
	/* After the restart, changes through the API reach the cache too. */
	json_object *b = cm("after-restart", 1);
	for (int i = 0; i < 50; i++) {
		if (kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, b, NULL, NULL, NULL) == 0)
			break;
		usleep(200000);
	}
	json_object_put(b);
	if (!wait_equal(informer_cache(inf), 60, &items))
		fail_msg("cache differs from a fresh LIST after the restart");
	informer_stats(inf, &after);
	assert_true(after.relists > before.relists);
	pthread_mutex_lock(&s.lock);
	int found = 0;
	for (int i = 0; i < s.n_deleted; i++)
		if (!strcmp(s.deleted[i], "keep-3") || !strcmp(s.deleted[i], "keep-7"))
			found++;
	pthread_mutex_unlock(&s.lock);
	assert_int_equal(found, 2);
	cache_read_lock();
	assert_null(cache_get(informer_cache(inf), "x"));
	cache_read_unlock();
	informer_set_free(set);
	metrics_free(m);
	intern_free(interns);
}

static void resync_without_api_calls(void **state)
{
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct informer *inf;
	struct intern *interns;
	struct metrics *m;
	struct informer_stats a, b;
	(void)state;
	struct informer_set *set = start_informer(&inf, &s, &interns, &m, 300ULL * 1000000ULL);
	informer_stats(inf, &a);
	usleep(1000000);
	informer_stats(inf, &b);
	pthread_mutex_lock(&s.lock);
	int resyncs = s.resyncs;
	pthread_mutex_unlock(&s.lock);
	/* About three rounds over every cached object, and no new LIST. */
	assert_true(resyncs >= 2 * (int)cache_count(informer_cache(inf)));
	assert_int_equal(a.lists, b.lists);
	informer_set_free(set);
	metrics_free(m);
	intern_free(interns);
}

int itests_informer(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(storm_then_equal_to_list),
		cmocka_unit_test(resync_without_api_calls),
		cmocka_unit_test(apiserver_restart_and_410_relist),
	};
	return cmocka_run_group_tests_name("informer", tests, setup, teardown);
}
