/*
 * bench_placement: placement decisions per second and their latency
 * (p50, p99) at 1,000 and 5,000 nodes with 50,000 pods in the caches,
 * while one writer thread keeps publishing node and pod updates (a node's
 * GPU utilization and resourceVersion; a bound pod's resourceVersion, and
 * every 16th update a pod deleted and re-added on another node, so the
 * by-node index changes under the readers).
 *
 * The caches are the real ones (operator/cache.h) filled through the real
 * projections (kind_nodes, kind_pods) from Node and Pod JSON shaped as the
 * API server sends it: GPU feature discovery labels, allocatable with
 * nvidia.com/gpu, MIG and shared resources, taints on 5% of the nodes,
 * cached-model labels, utilization annotations. Bound pods: up to 6 GPU
 * pods per GPU node, the rest CPU-only. The decider takes pending pods of
 * several shapes (1 and 2 GPUs, product selector, memory affinity, MIG,
 * time-slicing, high priority) round-robin, decides under cache_read_lock
 * and placement_lock as the controller does, and assumes the pod on the
 * chosen node (the last 256 assumptions are kept, older ones forgotten).
 *
 * Each node count runs twice: with the writer at BENCH_WRITER_RATE updates
 * per second (default 5,000: a busy large cluster's pod and node events),
 * then with the writer as fast as it can go (tens of thousands per second,
 * far above any cluster: every node's sums go stale within milliseconds).
 *
 * Environment: BENCH_SECONDS per run (default 3), BENCH_PODS (default
 * 50000), BENCH_WRITER_RATE (default 5000; 0 = only unthrottled). Prints "name value unit" lines; asserts nothing about
 * time. A failed projection fails the run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "intern.h"
#include "kinds.h"
#include "placement.h"
#include "ratelimit.h"
#include "ktime.h"
#include "keys.h"

#define PENDING 64
#define KEEP_ASSUMED 256
#define MAX_SAMPLES (1 << 22)

struct bench {
	int n_nodes;
	int n_pods;
	struct intern *interns;
	struct cache *nodes, *pods;
	struct placement *pl;
	atomic_bool stop;
	atomic_ulong updates;
	double writer_rate; /* updates/s; 0 = as fast as it can */
	int err;
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct placement *the_pl; /* told of pod changes, as the controller's handler does */

static int publish(struct cache *c, const char *json)
{
	json_object *j = json_tokener_parse(json);
	struct cache_obj *obj, *old;
	int r;

	if (!j)
		return -EBADMSG;
	r = cache_project(c, j, &obj);
	json_object_put(j);
	if (r < 0)
		return r;
	cache_write_begin(c); /* as the informer: the write, then its handlers */
	cache_publish(c, obj, &old);
	if (cache_kind(c) == &kind_pods) {
		placement_node_changed(the_pl, ((const struct kpod *)obj)->node);
		if (old)
			placement_node_changed(the_pl, ((const struct kpod *)old)->node);
	}
	if (cache_kind(c) == &kind_nodes) /* as the controller's node handler */
		placement_node_changed(the_pl, cache_obj_name(obj));
	cache_write_done(c);
	if (old)
		cache_retire(c, old);
	return 0;
}

/* Node i: its shape follows i (60% 8-GPU, 20% 4-GPU L4, 10% MIG, 10% shared). */
static int node_json(int i, uint64_t rv, int util, char *buf, size_t len)
{
	const char *product = "NVIDIA-A100-SXM4-80GB", *alloc = "\"nvidia.com/gpu\":\"8\"";
	const char *mem = "81920", *taint = "";
	char cached[128] = "";
	int kind = i % 10;

	if (kind < 3)
		product = "NVIDIA-H100-80GB-HBM3";
	else if (kind < 6)
		;
	else if (kind < 8) {
		product = "NVIDIA-L4";
		mem = "23034";
		alloc = "\"nvidia.com/gpu\":\"4\"";
	} else if (kind == 8)
		alloc = "\"nvidia.com/mig-1g.10gb\":\"7\",\"nvidia.com/mig-3g.40gb\":\"2\"";
	else {
		product = "Tesla-T4";
		mem = "15360";
		alloc = "\"nvidia.com/gpu.shared\":\"16\"";
	}
	if (i % 20 == 7)
		taint = "{\"key\":\"dedicated\",\"value\":\"infra\",\"effect\":\"NoSchedule\"}";
	if (i % 50 < 2)
		snprintf(cached, sizeof(cached), ",\"kinfer.io/cached.model-%d\":\"true\"",
			 (i / 50) % 50);
	int n = snprintf(buf, len,
			 "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node-%05d\","
			 "\"uid\":\"n%d\",\"resourceVersion\":\"%llu\",\"labels\":{\"type\":\"kwok\","
			 "\"kubernetes.io/hostname\":\"node-%05d\",\"kubernetes.io/os\":\"linux\","
			 "\"nvidia.com/gpu.product\":\"%s\",\"nvidia.com/gpu.memory\":\"%s\"%s},"
			 "\"annotations\":{\"kinfer.io/gpu-utilization\":\"%d\"}},"
			 "\"spec\":{\"taints\":[%s]},\"status\":{\"allocatable\":{\"cpu\":\"64\","
			 "\"memory\":\"1Ti\",\"pods\":\"110\",%s},"
			 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
			 i, i, (unsigned long long)rv, i, product, mem, cached, util, taint, alloc);
	return n > 0 && (size_t)n < len ? 0 : -ENOSPC;
}

/* Bound pod k on node; GPU pods ask the node's own resource. */
static int pod_json(int k, int node, int n_nodes, uint64_t rv, char *buf, size_t len)
{
	int kind = node % 10, slot = k / n_nodes;
	const char *res = kind < 8  ? "nvidia.com/gpu" :
			  kind == 8 ? "nvidia.com/mig-1g.10gb" :
				      "nvidia.com/gpu.shared";
	char limits[96] = "";

	if (slot < 3) /* three GPU pods per node, the rest CPU-only */
		snprintf(limits, sizeof(limits), ",\"limits\":{\"%s\":\"1\"}", res);
	int n = snprintf(buf, len,
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-%06d\","
			 "\"namespace\":\"serving\",\"uid\":\"p%d\",\"resourceVersion\":\"%llu\","
			 "\"labels\":{\"kinfer.io/service\":\"svc-%d\",\"kinfer.io/model\":\"model-%d\"}},"
			 "\"spec\":{\"nodeName\":\"node-%05d\",\"schedulerName\":\"kinfer\","
			 "\"containers\":[{\"name\":\"m\",\"resources\":{\"requests\":{\"cpu\":\"100m\","
			 "\"memory\":\"256Mi\"}%s}}]},\"status\":{\"phase\":\"Running\"}}",
			 k, k, (unsigned long long)rv, k % 500, k % 50, node, limits);
	return n > 0 && (size_t)n < len ? 0 : -ENOSPC;
}

/* The pending pods the decider places, of several shapes. */
static int pending_json(int k, char *buf, size_t len)
{
	static const char *const shapes[] = {
		"\"limits\":{\"nvidia.com/gpu\":\"1\"}}}]",
		"\"limits\":{\"nvidia.com/gpu\":\"2\"}}}],\"nodeSelector\":"
		"{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}",
		"\"limits\":{\"nvidia.com/gpu\":\"1\"}}}],\"affinity\":{\"nodeAffinity\":"
		"{\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":"
		"[{\"matchExpressions\":[{\"key\":\"nvidia.com/gpu.memory\",\"operator\":\"Gt\","
		"\"values\":[\"40959\"]}]}]}}}",
		"\"limits\":{\"nvidia.com/mig-3g.40gb\":\"1\"}}}]",
		"\"limits\":{\"nvidia.com/gpu.shared\":\"1\"}}}]",
	};
	int n = snprintf(buf, len,
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pending-%d\","
			 "\"namespace\":\"serving\",\"uid\":\"q%d\",\"resourceVersion\":\"1\","
			 "\"labels\":{\"kinfer.io/service\":\"svc-%d\",\"kinfer.io/model\":\"model-%d\","
			 "\"kinfer.io/priority\":\"%s\"}},\"spec\":{\"schedulerName\":\"kinfer\","
			 "\"tolerations\":[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\","
			 "\"effect\":\"NoSchedule\"}],\"containers\":[{\"name\":\"m\",\"resources\":"
			 "{\"requests\":{\"cpu\":\"1\",\"memory\":\"4Gi\"},%s},"
			 "\"status\":{\"phase\":\"Pending\"}}",
			 k, k, k % 500, k % 50, k % 7 == 0 ? "high" : "normal", shapes[k % 5]);
	return n > 0 && (size_t)n < len ? 0 : -ENOSPC;
}

static int fill(struct bench *b)
{
	char buf[4096];
	int r = 0;

	for (int i = 0; i < b->n_nodes && r == 0; i++)
		if ((r = node_json(i, 1, i % 100, buf, sizeof(buf))) == 0)
			r = publish(b->nodes, buf);
	for (int k = 0; k < b->n_pods && r == 0; k++)
		if ((r = pod_json(k, k % b->n_nodes, b->n_nodes, 1, buf, sizeof(buf))) == 0)
			r = publish(b->pods, buf);
	for (int k = 0; k < PENDING && r == 0; k++)
		if ((r = pending_json(k, buf, sizeof(buf))) == 0)
			r = publish(b->pods, buf);
	return r;
}

/* The writer: node and pod updates as fast as it can, until stop. */
static void *writer_main(void *ud)
{
	struct bench *b = ud;
	uint64_t seed = 42, rv = 2;
	char buf[4096], key[64];
	struct cache_obj *old;

	uint64_t t0 = ktime_mono_ns();
	unsigned long done = 0;

	rcu_register_thread();
	while (!atomic_load(&b->stop) && b->err == 0) {
		uint64_t x = rnd(&seed);
		/* Hold the rate: sleep off any lead over the schedule. */
		if (b->writer_rate > 0 && ++done % 16 == 0) {
			uint64_t due = t0 + (uint64_t)(done / b->writer_rate * 1e9),
				 t = ktime_mono_ns();
			if (due > t) {
				struct timespec ts = { (time_t)((due - t) / 1000000000ULL),
						       (long)((due - t) % 1000000000ULL) };
				nanosleep(&ts, NULL);
			}
		}
		int r;
		if (x % 4 == 0) {
			int i = (int)((x >> 8) % (uint64_t)b->n_nodes);
			r = node_json(i, rv++, (int)((x >> 40) % 101), buf, sizeof(buf));
			if (r == 0)
				r = publish(b->nodes, buf);
		} else {
			int k = (int)((x >> 8) % (uint64_t)b->n_pods);
			int node = k % b->n_nodes;
			if (x % 16 == 1) { /* deleted, and re-added elsewhere */
				snprintf(key, sizeof(key), "serving/pod-%06d", k);
				cache_write_begin(b->pods);
				if (cache_remove(b->pods, key, &old) == 0) {
					placement_node_changed(b->pl,
							       ((const struct kpod *)old)->node);
					cache_retire(b->pods, old);
				}
				cache_write_done(b->pods);
				node = (node + 1 + (int)((x >> 32) % 7)) % b->n_nodes;
			}
			r = pod_json(k, node, b->n_nodes, rv++, buf, sizeof(buf));
			if (r == 0)
				r = publish(b->pods, buf);
		}
		if (r < 0)
			b->err = r;
		atomic_fetch_add(&b->updates, 1);
	}
	rcu_unregister_thread();
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	unsigned long decisions, fits;
	uint64_t p50, p99, max;
	uint64_t cpu_p50, cpu_p99; /* the decider thread's own CPU per decision */
	double seconds;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t *cpu_samples;

/* The decider: round-robin over the pending pods, as the controller does. */
static int decide_loop(struct bench *b, double seconds, uint64_t *samples, struct result *res)
{
	char ring[KEEP_ASSUMED][64];
	struct placement_decision d;
	uint64_t t0 = ktime_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	unsigned long n = 0;

	memset(res, 0, sizeof(*res));
	memset(ring, 0, sizeof(ring));
	while (n < MAX_SAMPLES) {
		char key[64];
		int k = (int)(n % PENDING);
		snprintf(key, sizeof(key), "serving/pending-%d", k);
		uint64_t s = ktime_mono_ns(), c0 = thread_cpu_ns();
		if (s >= end)
			break;
		cache_read_lock();
		const struct kpod *p = (const struct kpod *)cache_get(b->pods, key);
		int r = -ENOENT;
		if (p) {
			placement_lock(b->pl);
			r = placement_decide(b->pl, b->nodes, b->pods, p, s, &d);
			if (r == 0) {
				placement_forget(b->pl, ring[n % KEEP_ASSUMED]);
				placement_forget(b->pl, key);
				/* Assume under a ring name so the 64 pods keep deciding. */
				snprintf(ring[n % KEEP_ASSUMED], sizeof(ring[0]), "%s", key);
				placement_assume(b->pl, p, d.node, s);
			}
			placement_unlock(b->pl);
		}
		cache_read_unlock();
		cpu_samples[n] = thread_cpu_ns() - c0;
		samples[n++] = ktime_mono_ns() - s;
		if (r == 0)
			res->fits++;
		else if (r != -ENOSPC)
			return r;
	}
	res->seconds = (double)(ktime_mono_ns() - t0) / 1e9;
	res->decisions = n;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	if (n) {
		res->p50 = samples[n / 2];
		res->p99 = samples[(n * 99) / 100];
		res->max = samples[n - 1];
		qsort(cpu_samples, n, sizeof(*cpu_samples), cmp_u64);
		res->cpu_p50 = cpu_samples[n / 2];
		res->cpu_p99 = cpu_samples[(n * 99) / 100];
	}
	return 0;
}

struct keys {
	char (*k)[64];
	size_t n, cap;
};

static int collect(const struct cache_obj *o, void *ud)
{
	struct keys *ks = ud;
	if (ks->k && ks->n < ks->cap)
		snprintf(ks->k[ks->n++], sizeof(ks->k[0]), "%s", o->key);
	return 0;
}

/* Remove every object (freed after a grace period) before cache_free. */
static void drain(struct cache *c)
{
	struct keys ks = { 0 };
	struct cache_obj *old;

	cache_read_lock();
	ks.cap = cache_count(c) + 16;
	ks.k = calloc(ks.cap, sizeof(*ks.k));
	cache_foreach(c, collect, &ks);
	cache_read_unlock();
	for (size_t i = 0; i < ks.n; i++)
		if (cache_remove(c, ks.k[i], &old) == 0)
			cache_retire(c, old);
	free(ks.k);
}

static int run(int n_nodes, int n_pods, double seconds, double rate, uint64_t *samples)
{
	struct bench b = { .n_nodes = n_nodes, .n_pods = n_pods, .writer_rate = rate };
	struct result res;
	pthread_t writer;
	int r;

	r = intern_new(&b.interns);
	if (r == 0)
		r = cache_new(&kind_nodes, b.interns, &b.nodes);
	if (r == 0)
		r = cache_new(&kind_pods, b.interns, &b.pods);
	if (r == 0)
		r = placement_new(NULL, &b.pl);
	the_pl = b.pl;
	uint64_t t0 = ktime_mono_ns();
	if (r == 0)
		r = fill(&b);
	if (r < 0) {
		fprintf(stderr, "bench_placement: filling the caches: %s\n", strerror(-r));
		goto out;
	}
	printf("placement_fill_%dn_seconds %.2f s\n", n_nodes, (double)(ktime_mono_ns() - t0) / 1e9);
	if (pthread_create(&writer, NULL, writer_main, &b) != 0) {
		r = -EAGAIN;
		goto out;
	}
	r = decide_loop(&b, seconds, samples, &res);
	atomic_store(&b.stop, true);
	pthread_join(writer, NULL);
	if (r == 0 && b.err)
		r = b.err;
	if (r < 0) {
		fprintf(stderr, "bench_placement: %s\n", strerror(-r));
		goto out;
	}
	printf("placement_nodes %d count\n", n_nodes);
	printf("placement_pods %lu count\n", cache_count(b.pods));
	const char *w = rate > 0 ? "" : "_writer_unthrottled";
	printf("placement_decisions_per_second_%dn%s %.0f 1/s\n", n_nodes, w,
	       res.decisions / res.seconds);
	printf("placement_decision_p50_%dn%s %.1f us\n", n_nodes, w, res.p50 / 1e3);
	printf("placement_decision_p99_%dn%s %.1f us\n", n_nodes, w, res.p99 / 1e3);
	printf("placement_decision_max_%dn%s %.1f us\n", n_nodes, w, res.max / 1e3);
	/* CPU time is what the decision costs; wall time adds the moments the
	 * decider waited for a core (other load, the writer thread). */
	printf("placement_decision_cpu_p50_%dn%s %.1f us\n", n_nodes, w, res.cpu_p50 / 1e3);
	printf("placement_decision_cpu_p99_%dn%s %.1f us\n", n_nodes, w, res.cpu_p99 / 1e3);
	printf("placement_fit_ratio_%dn%s %.2f ratio\n", n_nodes, w,
	       res.decisions ? (double)res.fits / res.decisions : 0);
	printf("placement_writer_updates_per_second_%dn%s %.0f 1/s\n", n_nodes, w,
	       atomic_load(&b.updates) / res.seconds);
out:
	if (b.pods)
		drain(b.pods);
	if (b.nodes)
		drain(b.nodes);
	cache_barrier();
	placement_free(b.pl);
	cache_free(b.pods);
	cache_free(b.nodes);
	cache_barrier();
	intern_free(b.interns);
	return r;
}

int main(void)
{
	const char *s = getenv("BENCH_SECONDS"), *p = getenv("BENCH_PODS");
	const char *wr = getenv("BENCH_WRITER_RATE");
	double seconds = s ? strtod(s, NULL) : 3, rate = wr ? strtod(wr, NULL) : 5000;
	int pods = p ? (int)strtol(p, NULL, 10) : 50000;
	static const int sizes[] = { 1000, 5000 };
	uint64_t *samples = malloc(MAX_SAMPLES * sizeof(*samples));

	cpu_samples = malloc(MAX_SAMPLES * sizeof(*cpu_samples));
	int r = 0;

	keys_register();
	if (!samples || !cpu_samples || seconds <= 0 || pods <= 0 || pods > 1000000 || rate < 0) {
		fprintf(stderr, "bench_placement: BENCH_SECONDS > 0, 0 < BENCH_PODS <= 1000000, "
				"BENCH_WRITER_RATE >= 0\n");
		free(samples);
		free(cpu_samples);
		return 2;
	}
	rcu_register_thread();
	/* At a steady rate of updates, then with the writer unthrottled. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && r == 0; i++)
		r = run(sizes[i], pods, seconds, rate, samples);
	for (size_t i = 0; rate > 0 && i < sizeof(sizes) / sizeof(sizes[0]) && r == 0; i++)
		r = run(sizes[i], pods, seconds, 0, samples);
	rcu_unregister_thread();
	free(samples);
	free(cpu_samples);
	return r < 0 ? 1 : 0;
}
