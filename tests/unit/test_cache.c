/*
 * cache and kinds: projections of objects a real kube-apiserver sent
 * (tests/data/{pod,node,deployment}.json, recorded from v1.33.13 with KWOK),
 * publish/replace/remove with indexes, and readers racing one writer (run
 * under TSan in CI).
 */
#include "unit.h"

#include "cache.h"
#include "kinds.h"
#include "slab.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static json_object *load(const char *name)
{
	char *s = test_read_data(name, NULL);
	assert_non_null(s);
	json_object *o = json_tokener_parse(s);
	free(s);
	assert_non_null(o);
	return o;
}

static void pod_projection(void **state)
{
	struct cache *c;
	struct cache_obj *obj, *old;
	json_object *j = load("pod.json");
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	assert_int_equal(cache_project(c, j, &obj), 0);
	const struct kpod *p = (const struct kpod *)obj;
	assert_string_equal(obj->ns, "default");
	assert_true(strncmp(cache_obj_name(obj), "llm-7b-", 7) == 0);
	assert_string_equal(obj->key + strlen("default/"), cache_obj_name(obj));
	assert_string_equal(obj->controller_kind, "ReplicaSet");
	char ub[CACHE_UID_MAX];
	assert_string_equal(cache_obj_uid(obj, ub), "cf8e78e4-d5a2-4892-abeb-da4229343717");
	assert_string_equal(p->node, "kwok-a100-0");
	char ipb[KPOD_IP_MAX];
	assert_string_equal(kpod_ip(p, ipb), "127.77.0.1");
	assert_string_equal(p->service, "llm-7b");
	assert_int_equal(p->phase, KPHASE_RUNNING);
	assert_int_equal(p->ready, KCOND_TRUE);
	assert_int_equal(p->warmed, KCOND_TRUE);
	assert_string_equal(p->warm_reason, "WarmupSucceeded");
	assert_true(p->has_gate);
	assert_int_equal(p->gpu, 1);
	assert_string_equal(p->gpu_resource, "nvidia.com/gpu");
	assert_int_equal(p->cpu_milli, 4000);
	assert_int_equal(p->mem_bytes, 16LL << 30);
	assert_true(p->has_deletion_cost);
	assert_int_equal(p->deletion_cost, -100);
	assert_true(obj->created > 1700000000);
	cache_publish(c, obj, &old);
	assert_null(old);
	assert_int_equal(cache_count(c), 1);
	json_object_put(j);
	cache_free(c);
}

static void node_and_deployment_projection(void **state)
{
	struct cache *nc, *dc;
	struct cache_obj *obj;
	json_object *n = load("node.json"), *d = load("deployment.json");
	(void)state;
	assert_int_equal(cache_new(&kind_nodes, test_interns, &nc), 0);
	assert_int_equal(cache_project(nc, n, &obj), 0);
	const struct knode *kn = (const struct knode *)obj;
	assert_string_equal(obj->key, "kwok-h100-0");
	assert_string_equal(obj->ns, "");
	assert_string_equal(kn->gpu_product, "NVIDIA-H100-80GB-HBM3");
	assert_int_equal(kn->gpu_memory_mib, 81920);
	assert_int_equal(knode_alloc(kn, "nvidia.com/gpu"), 8000);
	assert_int_equal(knode_alloc(kn, "cpu"), 32000);
	assert_int_equal(kn->ready, KCOND_TRUE);
	assert_string_equal(knode_label(kn, "type")->value, "kwok");
	cache_discard(nc, obj);
	assert_int_equal(cache_new(&kind_deployments, test_interns, &dc), 0);
	assert_int_equal(cache_project(dc, d, &obj), 0);
	const struct kdeployment *kd = (const struct kdeployment *)obj;
	assert_string_equal(kd->service, "llm-7b");
	assert_int_equal(kd->spec_replicas, 1);
	assert_int_equal(kd->generation, 1);
	assert_int_equal(kd->progressing, KCOND_TRUE);
	cache_discard(dc, obj);
	json_object_put(n);
	json_object_put(d);
	cache_free(nc);
	cache_free(dc);
}

/* A pod JSON with the given name, node and resourceVersion. */
static json_object *pod(const char *name, const char *node, int rv)
{
	char buf[512];
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\","
		 "\"resourceVersion\":\"%d\",\"labels\":{\"kinfer.io/service\":\"svc\"},"
		 "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"uid\":\"rs-1\",\"controller\":true}]},"
		 "\"spec\":{\"nodeName\":\"%s\"}}",
		 name, name, rv, node);
	return json_tokener_parse(buf);
}

static int count_cb(const struct cache_obj *o, void *ud)
{
	(void)o;
	(*(int *)ud)++;
	return 0;
}

static int by(struct cache *c, size_t idx, const char *v)
{
	int n = 0;
	cache_read_lock();
	cache_index_foreach(c, idx, v, count_cb, &n);
	cache_read_unlock();
	return n;
}

static void publish_replace_remove_and_indexes(void **state)
{
	struct cache *c;
	struct cache_obj *obj, *old;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	for (int i = 0; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		json_object *j = pod(name, i < 6 ? "n1" : "n2", 1);
		assert_int_equal(cache_project(c, j, &obj), 0);
		cache_publish(c, obj, &old);
		json_object_put(j);
	}
	assert_int_equal(by(c, KPOD_BY_NODE, "n1"), 6);
	assert_int_equal(by(c, KPOD_BY_NODE, "n2"), 4);
	assert_int_equal(by(c, KPOD_BY_SERVICE, "svc"), 10);
	/* Move p0 to n2: the index follows, the old version is returned. */
	json_object *j = pod("p0", "n2", 2);
	assert_int_equal(cache_project(c, j, &obj), 0);
	cache_publish(c, obj, &old);
	assert_non_null(old);
	char rb[CACHE_RV_MAX];
	assert_string_equal(cache_obj_rv(old, rb), "1");
	cache_retire(c, old);
	json_object_put(j);
	assert_int_equal(by(c, KPOD_BY_NODE, "n1"), 5);
	assert_int_equal(by(c, KPOD_BY_NODE, "n2"), 5);
	assert_int_equal(cache_count(c), 10);
	/* The move left no stale entry behind. */
	assert_int_equal(cache_index_size(c, KPOD_BY_NODE), 10);
	assert_int_equal(cache_index_size(c, KPOD_BY_SERVICE), 10);
	cache_read_lock();
	assert_string_equal(cache_obj_rv(cache_get(c, "ns/p0"), rb), "2");
	assert_null(cache_get(c, "ns/none"));
	cache_read_unlock();
	assert_int_equal(cache_remove(c, "ns/p0", &old), 0);
	cache_retire(c, old);
	assert_int_equal(cache_remove(c, "ns/p0", &old), -ENOENT);
	assert_int_equal(by(c, KPOD_BY_NODE, "n2"), 4);
	assert_int_equal(cache_count(c), 9);
	assert_int_equal(cache_index_size(c, KPOD_BY_NODE), 9);
	cache_free(c);
}

/* A pod given by its name, node, service label and component label (each
 * may be NULL). */
static json_object *pod_with(const char *name, const char *node, const char *service,
			     const char *component, int rv)
{
	char buf[768];
	snprintf(buf, sizeof(buf),
		 "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u-%s\","
		 "\"resourceVersion\":\"%d\",\"labels\":{%s%s%s%s%s%s%s}},"
		 "\"spec\":{%s%s%s}}",
		 name, name, rv, service ? "\"kinfer.io/service\":\"" : "", service ? service : "",
		 service ? "\"" : "", service && component ? "," : "",
		 component ? "\"app.kubernetes.io/component\":\"" : "", component ? component : "",
		 component ? "\"" : "", node ? "\"nodeName\":\"" : "", node ? node : "",
		 node ? "\"" : "");
	json_object *j = json_tokener_parse(buf);
	assert_non_null(j);
	return j;
}

static void put_pod(struct cache *c, json_object *j)
{
	struct cache_obj *obj, *old;
	assert_int_equal(cache_project(c, j, &obj), 0);
	json_object_put(j);
	cache_publish(c, obj, &old);
	cache_retire(c, old);
}

/*
 * Objects carry index links only up to their last index with a value
 * (none for a pod with no node, service or component; three for the
 * activator's): every move between those shapes keeps each index right.
 */
static void index_links_follow_the_object_shape(void **state)
{
	struct cache *c;
	struct cache_obj *old;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	put_pod(c, pod_with("bare", NULL, NULL, NULL, 1));
	put_pod(c, pod_with("svc", NULL, "s", NULL, 1));
	put_pod(c, pod_with("act", NULL, NULL, "activator", 1));
	put_pod(c, pod_with("all", "n1", "s", "activator", 1));
	assert_int_equal(by(c, KPOD_BY_NODE, "n1"), 1);
	assert_int_equal(by(c, KPOD_BY_SERVICE, "s"), 2);
	assert_int_equal(by(c, KPOD_BY_COMPONENT, "activator"), 2);
	/* Gain links, lose them, swap values: */
	put_pod(c, pod_with("bare", "n1", "s", "activator", 2));
	put_pod(c, pod_with("all", NULL, NULL, NULL, 2));
	put_pod(c, pod_with("act", "n2", NULL, NULL, 2));
	put_pod(c, pod_with("svc", "n1", "t", NULL, 2));
	assert_int_equal(by(c, KPOD_BY_NODE, "n1"), 2);
	assert_int_equal(by(c, KPOD_BY_NODE, "n2"), 1);
	assert_int_equal(by(c, KPOD_BY_SERVICE, "s"), 1);
	assert_int_equal(by(c, KPOD_BY_SERVICE, "t"), 1);
	assert_int_equal(by(c, KPOD_BY_COMPONENT, "activator"), 1);
	assert_int_equal(cache_index_size(c, KPOD_BY_NODE), 3);
	assert_int_equal(cache_index_size(c, KPOD_BY_SERVICE), 2);
	assert_int_equal(cache_index_size(c, KPOD_BY_COMPONENT), 1);
	assert_int_equal(cache_remove(c, "ns/bare", &old), 0);
	cache_retire(c, old);
	assert_int_equal(cache_remove(c, "ns/all", &old), 0);
	cache_retire(c, old);
	assert_int_equal(by(c, KPOD_BY_COMPONENT, "activator"), 0);
	assert_int_equal(by(c, KPOD_BY_NODE, "n1"), 1);
	assert_int_equal(cache_index_size(c, KPOD_BY_NODE), 2);
	assert_int_equal(cache_index_size(c, KPOD_BY_SERVICE), 1);
	assert_int_equal(cache_count(c), 2);
	cache_barrier();
	cache_free(c);
}

/* Project json with a string member key: value added under its member
 * parent (left out when value is NULL). */
static struct cache_obj *project_with(struct cache *c, const char *json, const char *parent,
				      const char *key, const char *value)
{
	json_object *j = json_tokener_parse(json);
	struct cache_obj *obj;
	if (value)
		json_object_object_add(json_object_object_get(j, parent), key,
				       json_object_new_string(value));
	assert_int_equal(cache_project(c, j, &obj), 0);
	json_object_put(j);
	return obj;
}

/* A field read back as the text it was given (NULL when none), and its
 * copy into a short buffer truncated from that text ("" when none). */
static void expect_read_back(const char *got, const char *copy, size_t copy_len, const char *want)
{
	if (want)
		assert_string_equal(got, want);
	else
		assert_null(got);
	assert_int_equal(strncmp(copy, want ? want : "", copy_len - 1), 0);
}

/* A UUID is kept as 16 bytes and read back as the same text; any other
 * uid (upper case, another variant, not a UUID, none) as its own text. */
static void uids_round_trip(void **state)
{
	static const char *const uids[] = {
		"cf8e78e4-d5a2-4892-abeb-da4229343717",
		"00000000-0000-0000-8000-000000000000",
		"ffffffff-ffff-ffff-bfff-ffffffffffff",
		"CF8E78E4-D5A2-4892-ABEB-DA4229343717",
		"cf8e78e4-d5a2-4892-cbeb-da4229343717",
		"cf8e78e4-d5a2-4892-0beb-da4229343717",
		"cf8e78e4d5a2-4892-abeb-da4229343717-",
		"cf8e78e4-d5a2-4892-abeb-da422934371",
		"u-p0",
		"",
		NULL,
	};
	struct cache *c;
	(void)state;
	assert_int_equal(cache_new(&kind_configmaps, test_interns, &c), 0);
	for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
		struct cache_obj *obj = project_with(c, "{\"metadata\":{\"name\":\"x\"}}",
						     "metadata", "uid", uids[i]);
		char ub[CACHE_UID_MAX], copy[8];
		cache_obj_uid_copy(obj, copy, sizeof(copy));
		expect_read_back(cache_obj_uid(obj, ub), copy, sizeof(copy), uids[i]);
		cache_discard(c, obj);
	}
	cache_free(c);
}

/* A resourceVersion is kept as a number when it reads back the same, as
 * text otherwise; two compare equal only when their text does. */
static void resource_versions_round_trip(void **state)
{
	static const char *const rvs[] = {
		"0",
		"1",
		"267",
		"9223372036854775807",
		"9223372036854775808",
		"18446744073709551615",
		"0123",
		"12a",
		"-1",
		"",
		NULL,
	};
	struct cache_obj *objs[sizeof(rvs) / sizeof(rvs[0])];
	struct cache *c;
	(void)state;
	assert_int_equal(cache_new(&kind_configmaps, test_interns, &c), 0);
	for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++) {
		char rb[CACHE_RV_MAX], copy[6];
		objs[i] = project_with(c, "{\"metadata\":{\"name\":\"x\"}}", "metadata",
				       "resourceVersion", rvs[i]);
		cache_obj_rv_copy(objs[i], copy, sizeof(copy));
		expect_read_back(cache_obj_rv(objs[i], rb), copy, sizeof(copy), rvs[i]);
	}
	for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++)
		for (size_t k = 0; k < sizeof(rvs) / sizeof(rvs[0]); k++)
			assert_int_equal(cache_obj_same_rv(objs[i], objs[k]),
					 i == k && rvs[i] != NULL);
	for (size_t i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++)
		cache_discard(c, objs[i]);
	cache_free(c);
}

/* An IPv4 pod IP is kept as 32 bits and read back as the same text; any
 * other (IPv6, leading zeros, not an address, none) as its own text. */
static void pod_ips_round_trip(void **state)
{
	static const char *const ips[] = {
		"10.0.0.1",   "0.0.0.0", "255.255.255.255",
		"198.18.3.4", "fd00::1", "2001:db8::ff00:42:8329",
		"010.1.1.1",  "1.2.3",   "not-an-ip",
		"",           NULL,
	};
	struct cache *c;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		struct cache_obj *obj = project_with(
			c, "{\"metadata\":{\"name\":\"x\",\"namespace\":\"n\"},\"status\":{}}",
			"status", "podIP", ips[i]);
		char ipb[KPOD_IP_MAX], copy[8];
		kpod_ip_copy((const struct kpod *)obj, copy, sizeof(copy));
		expect_read_back(kpod_ip((const struct kpod *)obj, ipb), copy, sizeof(copy), ips[i]);
		cache_discard(c, obj);
	}
	cache_free(c);
}

static void malformed_objects_are_refused(void **state)
{
	struct cache *c;
	struct cache_obj *obj = NULL;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	json_object *j = json_tokener_parse("{\"metadata\":{}}");
	assert_int_equal(cache_project(c, j, &obj), -EBADMSG);
	json_object_put(j);
	j = json_tokener_parse(
		"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"nodeName\":7,"
		"\"containers\":[{\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"lots\"}}}]}}");
	assert_int_equal(cache_project(c, j, &obj), 0);
	assert_null(((struct kpod *)obj)->node);
	assert_int_equal(((struct kpod *)obj)->gpu, 0);
	cache_discard(c, obj);
	json_object_put(j);
	cache_free(c);
}

/* ---- readers racing a writer ------------------------------------------ */

/* A race test proves nothing if the writer finishes before a reader ran (a
 * loaded CI machine schedules the threads late): wait, at most 10 s, until
 * the readers have done some work before writing. */
static void wait_for_readers(atomic_long *done)
{
	for (int i = 0; i < 10000 && atomic_load(done) < 2; i++)
		usleep(1000);
}

struct race {
	struct cache *c;
	atomic_int stop;
	atomic_long lookups, bad;
};

static void *reader(void *ud)
{
	struct race *r = ud;
	char key[16];
	rcu_register_thread();
	for (long i = 0; !atomic_load(&r->stop); i++) {
		snprintf(key, sizeof(key), "ns/p%ld", i % 64);
		cache_read_lock();
		const struct kpod *p = (const struct kpod *)cache_get(r->c, key);
		if (p && (strcmp(p->meta.key, key) != 0 || !p->node || p->node[0] != 'n'))
			atomic_fetch_add(&r->bad, 1);
		cache_read_unlock();
		atomic_fetch_add(&r->lookups, 1);
	}
	rcu_unregister_thread();
	return NULL;
}

static void readers_never_see_torn_objects(void **state)
{
	struct race r = { 0 };
	pthread_t t[2];
	struct cache_obj *obj, *old;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &r.c), 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, &r);
	wait_for_readers(&r.lookups);
	for (int i = 0; i < 20000; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i % 64);
		json_object *j = pod(name, i % 2 ? "n1" : "n2", i);
		assert_int_equal(cache_project(r.c, j, &obj), 0);
		json_object_put(j);
		if (i % 5 == 4 && cache_remove(r.c, obj->key, &old) == 0) {
			cache_retire(r.c, old);
			cache_discard(r.c, obj);
			continue;
		}
		cache_publish(r.c, obj, &old);
		cache_retire(r.c, old);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_true(atomic_load(&r.lookups) > 0);
	cache_free(r.c);
}

/* Freeing a cache right after filling it races liburcu's resize worker
 * unless the table is destroyed before its nodes are freed (bench_cache
 * found it: a crash in the 10th round of 30,000 pods). */
static void free_while_resizing(void **state)
{
	(void)state;
	for (int round = 0; round < 5; round++) {
		struct cache *c;
		struct cache_obj *obj, *old;
		assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
		for (int i = 0; i < 20000; i++) {
			char name[32];
			snprintf(name, sizeof(name), "p%d", i);
			json_object *j = pod(name, i % 2 ? "n1" : "n2", 1);
			assert_int_equal(cache_project(c, j, &obj), 0);
			json_object_put(j);
			cache_publish(c, obj, &old);
		}
		assert_int_equal(cache_count(c), 20000);
		cache_free(c);
	}
}

/* ---- the table and the indexes against a model ------------------------ */

#define CHURN_KEYS 3000
#define CHURN_NODES 7

static int num(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

static int seen_cb(const struct cache_obj *o, void *ud)
{
	int *seen = ud;
	int k = num(cache_obj_name(o) + 1);
	seen[k]++;
	return 0;
}

/*
 * Random inserts, moves between nodes and removals (the table grows,
 * fills with tombstones, rebuilds and shrinks), checked after each phase
 * against a plain array: every key found or not as the model says, each
 * object once in a walk, each index list holding exactly its objects.
 */
static void churn_matches_model(void **state)
{
	static int node_of[CHURN_KEYS], seen[CHURN_KEYS];
	struct cache *c;
	struct cache_obj *obj, *old;
	uint64_t seed = 42;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &c), 0);
	memset(node_of, -1, sizeof(node_of));
	for (int phase = 0; phase < 4; phase++) {
		/* 0, 2: mostly adds and moves; 1: mostly removals; 3: remove all. */
		int ops = phase == 3 ? CHURN_KEYS : 6000;
		for (int i = 0; i < ops; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			int k = phase == 3 ? i : (int)((seed >> 33) % CHURN_KEYS);
			int roll = (int)((seed >> 20) % 10);
			bool remove = phase == 3 || (phase == 1 ? roll < 7 : roll < 2);
			char name[16], node[16], key[32];
			snprintf(name, sizeof(name), "p%d", k);
			snprintf(key, sizeof(key), "ns/p%d", k);
			if (remove) {
				int r = cache_remove(c, key, &old);
				assert_int_equal(r, node_of[k] < 0 ? -ENOENT : 0);
				if (r == 0)
					cache_retire(c, old);
				node_of[k] = -1;
				continue;
			}
			int n = (int)((seed >> 40) % CHURN_NODES);
			snprintf(node, sizeof(node), "n%d", n);
			json_object *j = pod(name, node, i);
			assert_int_equal(cache_project(c, j, &obj), 0);
			json_object_put(j);
			cache_publish(c, obj, &old);
			assert_true((old != NULL) == (node_of[k] >= 0));
			cache_retire(c, old);
			node_of[k] = n;
		}
		size_t live = 0;
		int per_node[CHURN_NODES] = { 0 };
		cache_read_lock();
		for (int k = 0; k < CHURN_KEYS; k++) {
			char key[32];
			snprintf(key, sizeof(key), "ns/p%d", k);
			const struct kpod *p = (const struct kpod *)cache_get(c, key);
			if (node_of[k] < 0) {
				assert_null(p);
				continue;
			}
			assert_non_null(p);
			assert_int_equal(num(p->node + 1), node_of[k]);
			live++;
			per_node[node_of[k]]++;
		}
		memset(seen, 0, sizeof(seen));
		cache_foreach(c, seen_cb, seen);
		for (int k = 0; k < CHURN_KEYS; k++)
			assert_int_equal(seen[k], node_of[k] >= 0);
		memset(seen, 0, sizeof(seen));
		for (int n = 0; n < CHURN_NODES; n++) {
			char node[16];
			snprintf(node, sizeof(node), "n%d", n);
			cache_index_foreach(c, KPOD_BY_NODE, node, seen_cb, seen);
		}
		for (int k = 0; k < CHURN_KEYS; k++)
			assert_int_equal(seen[k], node_of[k] >= 0);
		cache_read_unlock();
		for (int n = 0; n < CHURN_NODES; n++) {
			char node[16];
			snprintf(node, sizeof(node), "n%d", n);
			assert_int_equal(by(c, KPOD_BY_NODE, node), per_node[n]);
		}
		assert_int_equal(cache_count(c), live);
		assert_int_equal(cache_index_size(c, KPOD_BY_NODE), live);
		assert_int_equal(by(c, KPOD_BY_SERVICE, "svc"), (int)live);
	}
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

/* Readers walk the by-node lists while the writer moves pods between two
 * nodes and removes and re-adds them: a walk never sees a pod twice, and
 * every pod it sees is on the walked node (run under TSan in CI). */
struct walkers {
	struct cache *c;
	atomic_int stop;
	atomic_long walks, bad;
};

static int walk_cb(const struct cache_obj *o, void *ud)
{
	int *seen = ud;
	seen[num(cache_obj_name(o) + 1) % 64]++;
	return 0;
}

static void *index_walker(void *ud)
{
	struct walkers *w = ud;
	rcu_register_thread();
	for (long i = 0; !atomic_load(&w->stop); i++) {
		const char *node = i % 2 ? "n1" : "n2";
		int seen[64] = { 0 };
		cache_read_lock();
		cache_index_foreach(w->c, KPOD_BY_NODE, node, walk_cb, seen);
		cache_read_unlock();
		for (int k = 0; k < 64; k++)
			if (seen[k] > 1)
				atomic_fetch_add(&w->bad, 1);
		atomic_fetch_add(&w->walks, 1);
	}
	rcu_unregister_thread();
	return NULL;
}

static int on_node_cb(const struct cache_obj *o, void *ud)
{
	return strcmp(((const struct kpod *)o)->node, ud) != 0;
}

static void index_walks_race_moves(void **state)
{
	struct walkers w = { 0 };
	pthread_t t[2];
	struct cache_obj *obj, *old;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &w.c), 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, index_walker, &w);
	wait_for_readers(&w.walks);
	for (int i = 0; i < 6000; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", (i * 7) % 64);
		if (i % 9 == 8) {
			char key[32];
			snprintf(key, sizeof(key), "ns/%s", name);
			if (cache_remove(w.c, key, &old) == 0)
				cache_retire(w.c, old);
			continue;
		}
		json_object *j = pod(name, i % 3 ? "n1" : "n2", i);
		assert_int_equal(cache_project(w.c, j, &obj), 0);
		json_object_put(j);
		cache_publish(w.c, obj, &old);
		cache_retire(w.c, old);
		if (i % 1000 == 0) {
			cache_read_lock();
			assert_int_equal(cache_index_foreach(w.c, KPOD_BY_NODE, "n1", on_node_cb,
							     "n1"),
					 0);
			cache_read_unlock();
		}
	}
	atomic_store(&w.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&w.bad), 0);
	assert_true(atomic_load(&w.walks) > 0);
	cache_free(w.c);
}

/*
 * The slab under the objects (slab.h): blocks of every size from 1 byte to
 * past SLAB_MAX, each filled with its own pattern; half freed by another
 * thread (as the RCU callbacks do), then as many allocated again. No block
 * overlaps another (every pattern intact at the end), freed blocks are
 * reused (the pages do not grow in the second round), and each block is
 * 8-byte aligned.
 */
#define SLAB_BLOCKS 6000

struct slab_block {
	unsigned char *p;
	size_t size;
	unsigned char fill;
};

struct slab_freer {
	struct slab *s;
	struct slab_block *b;
};

static void *slab_free_odd(void *arg)
{
	struct slab_freer *f = arg;
	for (size_t i = 1; i < SLAB_BLOCKS; i += 2) {
		slab_free(f->s, f->b[i].p);
		f->b[i].p = NULL;
	}
	return NULL;
}

static void slab_fill(struct slab *s, struct slab_block *b, size_t i, unsigned fill)
{
	b->size = 1 + (i * 2654435761u) % (SLAB_MAX + 600);
	b->fill = (unsigned char)(i * 31 + fill);
	b->p = slab_alloc(s, b->size);
	assert_non_null(b->p);
	assert_int_equal((uintptr_t)b->p % 8, 0);
	memset(b->p, b->fill, b->size);
}

static bool slab_intact(const struct slab_block *b)
{
	for (size_t k = 0; k < b->size; k++)
		if (b->p[k] != b->fill)
			return false;
	return true;
}

static void slab_blocks_never_overlap(void **state)
{
	(void)state;
	struct slab *s;
	struct slab_block *b = calloc(SLAB_BLOCKS, sizeof(*b));
	struct slab_stats st1, st2;
	pthread_t t;

	assert_non_null(b);
	assert_int_equal(slab_new(&s), 0);
	for (size_t i = 0; i < SLAB_BLOCKS; i++)
		slab_fill(s, &b[i], i, 7);
	slab_stats(s, &st1);
	assert_true(st1.large > 0);
	struct slab_freer f = { s, b };
	assert_int_equal(pthread_create(&t, NULL, slab_free_odd, &f), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (size_t i = 1; i < SLAB_BLOCKS; i += 2)
		slab_fill(s, &b[i], i, 11); /* the size freed, another pattern */
	slab_stats(s, &st2);
	size_t bad = 0;
	for (size_t i = 0; i < SLAB_BLOCKS; i++)
		bad += !slab_intact(&b[i]);
	assert_int_equal(bad, 0);
	/* Blocks of the sizes freed came back: at most one new page. */
	assert_true(st2.pages <= st1.pages + 1);
	for (size_t i = 0; i < SLAB_BLOCKS; i++)
		slab_free(s, b[i].p);
	slab_stats(s, &st2);
	assert_int_equal(st2.large, 0);
	slab_free(s, NULL);
	slab_destroy(s);
	free(b);
}

int tests_cache(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pod_projection),
		cmocka_unit_test(slab_blocks_never_overlap),
		cmocka_unit_test(node_and_deployment_projection),
		cmocka_unit_test(publish_replace_remove_and_indexes),
		cmocka_unit_test(index_links_follow_the_object_shape),
		cmocka_unit_test(uids_round_trip),
		cmocka_unit_test(resource_versions_round_trip),
		cmocka_unit_test(pod_ips_round_trip),
		cmocka_unit_test(malformed_objects_are_refused),
		cmocka_unit_test(readers_never_see_torn_objects),
		cmocka_unit_test(free_while_resizing),
		cmocka_unit_test(churn_matches_model),
		cmocka_unit_test(index_walks_race_moves),
	};
	return cmocka_run_group_tests_name("cache", tests, test_rcu_setup, test_rcu_teardown);
}
