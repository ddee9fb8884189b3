/*
 * bench_memory: heap bytes per Pod in the RCU cache (kind_pods: the
 * projection, its strings, the hash table, the three secondary indexes and
 * the interned strings), next to the bytes of the Pod's JSON as the API
 * server sends it and of the json-c tree a naive cache would keep.
 *
 * Pods are the recorded tests/data/pod.json with their own name, uid, IP,
 * node (1000) and owner (podgen.h: 3000 ReplicaSets, 1000 services; the
 * figure barely depends on it, the run time does). Each JSON is parsed,
 * projected, published and put before the next, so the JSON is not
 * counted. Heap in use is glibc's mallinfo2() (uordblks + hblkhd, every
 * arena) after malloc_trim; it is read until it stops moving, because the
 * lock-free hash tables resize in a worker thread.
 *
 * Then the whole cluster the issue sizes (BENCH_CLUSTER=0 skips it): next
 * to the pods, 5,000 Nodes (tests/data/node.json), 10,000
 * InferenceServices (BENCH_ISVC, default tests/data/isvc/vllm.json, a
 * typical manifest; full.json has every field) and their Deployments
 * (tests/data/deployment.json) and Services, each recorded object renamed
 * per copy and projected into its own cache as the operator's informers
 * do; heap per object of each kind and the process's RSS (the operator's
 * libraries are linked in, so its baseline is the operator's too).
 *
 * Environment: BENCH_N pods (default 100000).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "intern.h"
#include "isvc.h"
#include "kinds.h"
#include "podgen.h"
#include "keys.h"

#define TREES 2000 /* json-c trees kept at once for their cost */

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, resident = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Heap in use once background resizes are done (bounded: 2 s). */
static size_t settled_heap(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	size_t last = 0, now;
	int same = 0;

	cache_barrier();
	for (int i = 0; i < 100 && same < 5; i++) {
		malloc_trim(0);
		now = heap_in_use();
		same = now == last ? same + 1 : 0;
		last = now;
		nanosleep(&ts, NULL);
	}
	return last;
}

static json_object *parse(json_tokener *tok, const char *buf, size_t len)
{
	json_tokener_reset(tok);
	return json_tokener_parse_ex(tok, buf, (int)len);
}

/* Parse, project, publish, put: one pod into the cache. */
static int add_pod(struct cache *c, json_tokener *tok, const struct podgen *g, uint64_t id,
		   char *buf, size_t cap, size_t *ret_len)
{
	struct podgen_pod p = podgen_pod_of(id, 1000 + id, PODGEN_OWNERS);
	size_t len = podgen_render(g, &p, buf, cap);
	json_object *json = len ? parse(tok, buf, len) : NULL;
	struct cache_obj *obj, *old;
	int r;

	if (!json)
		return -EBADMSG;
	r = cache_project(c, json, &obj);
	json_object_put(json);
	if (r < 0)
		return r;
	cache_publish(c, obj, &old);
	cache_retire(c, old);
	*ret_len = len;
	return 0;
}

/* Everything first use allocates for good (tokener, tz data, urcu). */
static int warm_up(json_tokener *tok, const struct podgen *g, char *buf, size_t cap)
{
	struct intern *t = NULL;
	struct cache *c = NULL;
	size_t len;
	int r = intern_new(&t);

	if (r == 0)
		r = cache_new(&kind_pods, t, &c);
	if (r == 0)
		r = add_pod(c, tok, g, 0, buf, cap, &len);
	cache_free(c);
	intern_free(t);
	return r;
}

/* What keeping the parsed JSON would cost instead, per pod. */
static double jsonc_tree_bytes(json_tokener *tok, const struct podgen *g, char *buf, size_t cap,
			       unsigned long n)
{
	json_object **trees = calloc(n, sizeof(*trees));
	size_t before, after;

	if (!trees)
		return 0;
	before = settled_heap();
	for (unsigned long i = 0; i < n; i++) {
		struct podgen_pod p = podgen_pod_of(i, 1000 + i, PODGEN_OWNERS);
		size_t len = podgen_render(g, &p, buf, cap);
		trees[i] = len ? parse(tok, buf, len) : NULL;
	}
	after = settled_heap();
	for (unsigned long i = 0; i < n; i++)
		json_object_put(trees[i]);
	free(trees);
	return after > before ? (double)(after - before) / (double)n : 0;
}

/* What the fill measured; heap and RSS before and after. */
struct figures {
	unsigned long n;
	size_t heap0, heap1, rss0, rss1, json_bytes;
};

static void print_figures(const struct figures *f, struct intern *interns)
{
	double n = (double)f->n;
	double per_pod = f->heap1 > f->heap0 ? (double)(f->heap1 - f->heap0) / n : 0;
	double per_json = (double)f->json_bytes / n;

	printf("memory_pods %lu pods\n", f->n);
	if (per_pod > 0) {
		printf("memory_bytes_per_pod_cache %.0f bytes\n", per_pod);
		printf("memory_bytes_per_pod_json %.0f bytes\n", per_json);
		printf("memory_json_over_cache_ratio %.1f ratio\n", per_json / per_pod);
	} else {
		/* Under valgrind, whose malloc mallinfo2 does not see. */
		fprintf(stderr, "bench_memory: mallinfo2 sees no heap; no per-pod figures\n");
		printf("memory_bytes_per_pod_json %.0f bytes\n", per_json);
	}
	printf("memory_intern_bytes %zu bytes\n", intern_bytes(interns));
	printf("memory_intern_strings %zu strings\n", intern_count(interns));
	printf("memory_intern_bytes_per_pod %.1f bytes\n", (double)intern_bytes(interns) / n);
	printf("memory_rss_bytes_per_pod_cache %.0f bytes\n",
	       f->rss1 > f->rss0 ? (double)(f->rss1 - f->rss0) / n : 0.0);
}

/* Make the intern table and the cache, and fill them with f->n pods. */
static int fill(struct figures *f, const struct podgen *g, json_tokener *tok, char *buf, size_t cap,
		struct intern **ret_interns, struct cache **ret_cache)
{
	size_t len;
	int r;

	f->heap0 = settled_heap();
	f->rss0 = rss_bytes();
	r = intern_new(ret_interns);
	if (r == 0)
		r = cache_new(&kind_pods, *ret_interns, ret_cache);
	for (unsigned long i = 0; i < f->n && r == 0; i++) {
		r = add_pod(*ret_cache, tok, g, i, buf, cap, &len);
		f->json_bytes += len;
	}
	if (r < 0)
		return r;
	f->heap1 = settled_heap();
	f->rss1 = rss_bytes();
	if (cache_count(*ret_cache) != f->n) {
		fprintf(stderr, "bench_memory: %zu pods cached, expected %lu\n",
			cache_count(*ret_cache), f->n);
		return -EPROTO;
	}
	return 0;
}

/* ---- the whole cluster ------------------------------------------------ */

#define CLUSTER_NODES 5000
#define CLUSTER_SERVICES 10000

/* A Service as the API server returns one of kinfer's (server-side apply). */
static const char service_json[] =
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"x\","
	"\"namespace\":\"default\",\"uid\":\"5b2a1f0c-8c1e-4a51-9d1e-2f3a4b5c6d7e\","
	"\"resourceVersion\":\"270\",\"creationTimestamp\":\"2026-11-23T13:52:19Z\","
	"\"labels\":{\"kinfer.io/service\":\"x\"},\"annotations\":{\"kinfer.io/applied-hash\":"
	"\"9f86d081884c7d65\"},\"ownerReferences\":[{\"apiVersion\":\"kinfer.io/v1alpha1\","
	"\"kind\":\"InferenceService\",\"name\":\"x\",\"uid\":\"0a1b2c3d-4e5f-6789-abcd-ef0123456789\","
	"\"controller\":true,\"blockOwnerDeletion\":true}]},\"spec\":{\"ports\":[{\"name\":\"http\","
	"\"protocol\":\"TCP\",\"port\":8000,\"targetPort\":8000}],\"selector\":{\"kinfer.io/service\":"
	"\"x\"},\"clusterIP\":\"198.19.0.10\",\"clusterIPs\":[\"198.19.0.10\"],\"type\":\"ClusterIP\","
	"\"sessionAffinity\":\"None\",\"ipFamilies\":[\"IPv4\"],\"ipFamilyPolicy\":\"SingleStack\","
	"\"internalTrafficPolicy\":\"Cluster\"},\"status\":{\"loadBalancer\":{}}}";

static json_object *load_json(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	json_object *o = NULL;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	if (buf) {
		buf[len] = '\0';
		o = json_tokener_parse(buf);
	}
	free(buf);
	return o;
}

static void set_meta(json_object *obj, const char *key, const char *v)
{
	json_object *meta = cache_json_get(obj, "metadata");
	if (meta)
		json_object_object_add(meta, key, json_object_new_string(v));
}

/* n renamed copies of tmpl into c: name (and the service label) from fmt. */
static int fill_kind(struct cache *c, json_object *tmpl, const char *fmt, int n)
{
	json_object *labels = cache_json_get(tmpl, "metadata.labels");
	char name[64], uid[64], rv[24];
	int r = 0;

	for (int i = 0; i < n && r == 0; i++) {
		struct cache_obj *obj, *old;
		snprintf(name, sizeof(name), fmt, i);
		snprintf(uid, sizeof(uid), "%08x-8c1e-4a51-9d1e-%012x", (unsigned)i,
			 (unsigned)i * 7919u);
		set_meta(tmpl, "name", name);
		set_meta(tmpl, "uid", uid);
		snprintf(rv, sizeof(rv), "%d", 1000000 + i); /* decimal, as the API server's */
		set_meta(tmpl, "resourceVersion", rv);
		if (labels && json_object_object_get_ex(labels, KINFER_SERVICE_LABEL, NULL))
			json_object_object_add(labels, KINFER_SERVICE_LABEL,
					       json_object_new_string(name));
		r = cache_project(c, tmpl, &obj);
		if (r == 0) {
			cache_publish(c, obj, &old);
			cache_retire(c, old);
		}
	}
	return r;
}

static int drain_one(const struct cache_obj *obj, void *ud)
{
	char(*keys)[320] = ud;
	size_t *n = (size_t *)keys[0];
	snprintf(keys[1 + (*n)++], sizeof(keys[0]), "%s", obj->key);
	return 0;
}

/* Remove every object (freed after a grace period) before cache_free. */
static void drain_cache(struct cache *c)
{
	size_t cnt = cache_count(c);
	char(*keys)[320] = calloc(cnt + 2, sizeof(*keys));
	struct cache_obj *old;

	if (!keys)
		return;
	cache_read_lock();
	cache_foreach(c, drain_one, keys);
	cache_read_unlock();
	for (size_t i = 0; i < *(size_t *)keys[0]; i++)
		if (cache_remove(c, keys[1 + i], &old) == 0)
			cache_retire(c, old);
	free(keys);
}

/* The other kinds next to the pods already cached: heap per object of
 * each, and the process's RSS with everything in. */
static int cluster_case(struct intern *interns, struct cache *pods, size_t rss_start)
{
	static const struct {
		const struct cache_kind *kind;
		const char *file, *fmt;
		int n;
	} kinds[] = {
		{ &kind_nodes, KINFER_TEST_DATA "/node.json", "kwok-gpu-%05d", CLUSTER_NODES },
		{ &kind_inferenceservices, NULL, "llm-%05d", CLUSTER_SERVICES },
		{ &kind_deployments, KINFER_TEST_DATA "/deployment.json", "llm-%05d",
		  CLUSTER_SERVICES },
		{ &kind_services, "", "llm-%05d", CLUSTER_SERVICES },
	};
	struct cache *caches[4] = { 0 };
	size_t total = cache_count(pods);
	int r = 0;

	for (size_t k = 0; k < 4 && r == 0; k++) {
		const char *isvc = getenv("BENCH_ISVC");
		const char *file = kinds[k].file ? kinds[k].file :
				   isvc && *isvc ? isvc :
						   KINFER_TEST_DATA "/isvc/vllm.json";
		json_object *tmpl = *file ? load_json(file) : json_tokener_parse(service_json);
		size_t h0 = settled_heap();
		if (!tmpl)
			r = -EBADMSG;
		if (r == 0)
			r = cache_new(kinds[k].kind, interns, &caches[k]);
		if (r == 0)
			r = fill_kind(caches[k], tmpl, kinds[k].fmt, kinds[k].n);
		json_object_put(tmpl);
		if (r == 0) {
			size_t h1 = settled_heap();
			printf("memory_cluster_bytes_per_%s %.0f bytes\n", kinds[k].kind->name,
			       h1 > h0 ? (double)(h1 - h0) / kinds[k].n : 0.0);
			total += cache_count(caches[k]);
		}
	}
	if (r == 0) {
		printf("memory_cluster_objects %zu objects\n", total);
		printf("memory_cluster_heap_bytes %zu bytes\n", settled_heap());
		printf("memory_cluster_rss_mib %.1f MiB\n", (double)rss_bytes() / (1 << 20));
		printf("memory_cluster_rss_before_caches_mib %.1f MiB\n",
		       (double)rss_start / (1 << 20));
	}
	for (size_t k = 0; k < 4; k++)
		if (caches[k]) {
			drain_cache(caches[k]);
			cache_barrier();
			cache_free(caches[k]);
		}
	return r;
}

int main(void)
{
	struct figures f = { .n = podgen_env_n(100000) };
	struct podgen *g = NULL;
	struct intern *interns = NULL;
	struct cache *c = NULL;
	json_tokener *tok = NULL;
	char *buf = NULL;
	size_t cap = 0;
	double tree;
	int r;

	keys_register();
	rcu_register_thread();
	r = podgen_new(KINFER_TEST_DATA "/pod.json", &g);
	if (r < 0) {
		fprintf(stderr, "bench_memory: %s/pod.json: %s\n", KINFER_TEST_DATA, strerror(-r));
		goto out;
	}
	cap = podgen_max_event(g);
	buf = malloc(cap);
	tok = json_tokener_new();
	r = buf && tok ? warm_up(tok, g, buf, cap) : -ENOMEM;
	if (r == 0)
		r = fill(&f, g, tok, buf, cap, &interns, &c);
	if (r < 0)
		goto out;
	print_figures(&f, interns);
	{
		const char *cl = getenv("BENCH_CLUSTER");
		if (!cl || strcmp(cl, "0") != 0)
			r = cluster_case(interns, c, f.rss0);
	}
	if (r < 0)
		goto out;
	podgen_drain(c, NULL, f.n, PODGEN_OWNERS);
	cache_free(c);
	c = NULL;
	tree = jsonc_tree_bytes(tok, g, buf, cap, f.n < TREES ? f.n : TREES);
	if (tree > 0)
		printf("memory_jsonc_tree_bytes_per_pod %.0f bytes\n", tree);
out:
	if (r < 0)
		fprintf(stderr, "bench_memory: %s\n", strerror(-r));
	if (c)
		podgen_drain(c, NULL, f.n, PODGEN_OWNERS);
	cache_free(c);
	intern_free(interns);
	if (tok)
		json_tokener_free(tok);
	free(buf);
	podgen_free(g);
	rcu_unregister_thread();
	return r < 0 ? 1 : 0;
}
