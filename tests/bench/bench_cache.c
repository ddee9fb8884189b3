/*
 * bench_cache: lookups per second in the Pod cache while one writer
 * replaces entries, for
 *  - the RCU cache (operator/cache.h, kind_pods): readers use
 *    cache_read_lock / cache_get / cache_read_unlock; the writer does
 *    cache_project + cache_publish + cache_retire;
 *  - the same objects (made by cache_project) in a plain chained hash table
 *    behind a pthread_rwlock_t: readers take the read lock per lookup, the
 *    writer projects outside the lock and takes the write lock per replace.
 * Each with 1 and 2 reader threads, for a fixed time; prints lookups/s,
 * the writer's updates/s, and the RCU/rwlock ratio of lookups. A lookup
 * that finds nothing is a bug (every key is always present) and fails the
 * run; nothing is asserted about time.
 *
 * The writer edits a parsed copy of the recorded Pod (tests/data/pod.json)
 * into the pod it updates (name, uid, resourceVersion, owner, labels,
 * nodeName, podIP; podgen.h's cluster). A pod keeps its node and owner, as
 * in a status update, so the cache's secondary indexes are left alone.
 *
 * Environment: BENCH_N pods (default 100000), BENCH_SECONDS per
 * measurement (default 2).
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
#include "podgen.h"
#include "ratelimit.h"
#include "ktime.h"
#include "keys.h"

#define KEY_MAX 64
#define CHECK_EVERY 64

/* One parsed Pod, edited in place into each pod the writer needs. */
struct pool {
	json_object *pod, *meta, *labels, *owner, *spec, *status;
};

/* The rwlock side: buckets of (hash, object) under one lock. */
struct pent {
	struct pent *next;
	unsigned long hash;
	struct cache_obj *obj;
};

struct ptab {
	pthread_rwlock_t lock;
	struct pent **buckets;
	size_t mask;
	struct pent *ents;
};

struct bench {
	unsigned long n;
	const char *keys; /* n slots of KEY_MAX bytes */
	struct pool pool;
	struct cache *cache; /* RCU: the table; rwlock: projection only */
	struct ptab *ptab;   /* NULL for the RCU runs */
	bool prefer_writer;  /* the rwlock as Go's sync.RWMutex */
	pthread_barrier_t start;
	atomic_bool stop;
	atomic_ulong misses;
};

struct worker {
	pthread_t thread;
	struct bench *b;
	uint64_t seed;
	unsigned long ops;
	uint64_t cpu_ns; /* the thread's own CPU time while measured */
	int err;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Readers add what they read here, so the reads are not optimized away. */
static atomic_ulong sink;

/* The cache's own hash, so both sides pay the same. */
static unsigned long plain_hash(const char *s)
{
	return cache_key_hash(s);
}

static const char *key_of(const struct bench *b, unsigned long k)
{
	return b->keys + k * KEY_MAX;
}

static unsigned long pick(uint64_t *seed, unsigned long n)
{
	return (unsigned long)(((podgen_rand(seed) >> 32) * n) >> 32);
}

/* ---- the writer's JSON ------------------------------------------------ */

static int pool_init(struct pool *pl, const struct podgen *g)
{
	struct podgen_pod p = podgen_pod_of(0, 1, PODGEN_OWNERS);
	size_t cap = podgen_max_event(g), len;
	char *buf = malloc(cap);
	json_object *refs;

	if (!buf)
		return -ENOMEM;
	len = podgen_render(g, &p, buf, cap);
	pl->pod = len ? json_tokener_parse(buf) : NULL;
	free(buf);
	pl->meta = cache_json_get(pl->pod, "metadata");
	pl->labels = cache_json_get(pl->pod, "metadata.labels");
	refs = cache_json_get(pl->pod, "metadata.ownerReferences");
	pl->owner = refs && json_object_is_type(refs, json_type_array) ?
			    json_object_array_get_idx(refs, 0) :
			    NULL;
	pl->spec = cache_json_get(pl->pod, "spec");
	pl->status = cache_json_get(pl->pod, "status");
	return pl->meta && pl->labels && pl->owner && pl->spec && pl->status ? 0 : -EBADMSG;
}

static void pool_free(struct pool *pl)
{
	json_object_put(pl->pod);
}

static void set_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

/* Pod k's JSON at resourceVersion rv: every field podgen varies, set. */
static json_object *pod_json(struct pool *pl, unsigned long k, uint64_t rv)
{
	struct podgen_pod p = podgen_pod_of(k, rv, PODGEN_OWNERS);
	struct podgen_values v;

	podgen_values(&p, &v);
	set_str(pl->meta, "name", v.name);
	set_str(pl->meta, "uid", v.uid);
	set_str(pl->meta, "resourceVersion", v.rv);
	set_str(pl->labels, KINFER_SERVICE_LABEL, v.service);
	set_str(pl->labels, "pod-template-hash", v.hash);
	set_str(pl->owner, "name", v.owner_name);
	set_str(pl->owner, "uid", v.owner_uid);
	set_str(pl->spec, "nodeName", v.node);
	set_str(pl->status, "podIP", v.ip);
	return pl->pod;
}

/* ---- the plain table -------------------------------------------------- */

static struct pent *ptab_find(struct ptab *t, const char *key, unsigned long h)
{
	for (struct pent *e = t->buckets[h & t->mask]; e; e = e->next)
		if (e->hash == h && strcmp(e->obj->key, key) == 0)
			return e;
	return NULL;
}

static void ptab_free(struct ptab *t, struct cache *c, unsigned long n)
{
	if (!t)
		return;
	for (unsigned long i = 0; t->ents && i < n; i++)
		cache_discard(c, t->ents[i].obj);
	free(t->ents);
	free(t->buckets);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

static int ptab_new(struct bench *b, struct ptab **ret)
{
	struct ptab *t = calloc(1, sizeof(*t));
	size_t nb = 1;
	int r = -ENOMEM;

	if (!t)
		return -ENOMEM;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	/* Writer-preferring: a waiting writer holds off new readers, as Go's
	 * sync.RWMutex does (client-go's thread-safe store); glibc's default
	 * lets readers starve the writer. */
	if (b->prefer_writer)
		pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	while (nb < b->n)
		nb *= 2;
	t->mask = nb - 1;
	t->buckets = calloc(nb, sizeof(*t->buckets));
	t->ents = calloc(b->n, sizeof(*t->ents));
	if (!t->buckets || !t->ents)
		goto fail;
	for (unsigned long k = 0; k < b->n; k++) {
		struct pent *e = &t->ents[k];

		r = cache_project(b->cache, pod_json(&b->pool, k, 1000 + k), &e->obj);
		if (r < 0)
			goto fail;
		e->hash = plain_hash(e->obj->key);
		e->next = t->buckets[e->hash & t->mask];
		t->buckets[e->hash & t->mask] = e;
	}
	*ret = t;
	return 0;
fail:
	ptab_free(t, b->cache, b->n);
	return r;
}

/* ---- threads ---------------------------------------------------------- */

static void *rcu_reader(void *ud)
{
	struct worker *w = ud;
	struct bench *b = w->b;
	unsigned long ops = 0, misses = 0, sum = 0;

	rcu_register_thread();
	pthread_barrier_wait(&b->start);
	w->cpu_ns = thread_cpu_ns();
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		for (int i = 0; i < CHECK_EVERY; i++) {
			const char *key = key_of(b, pick(&w->seed, b->n));
			const struct kpod *p;

			cache_read_lock();
			p = (const void *)cache_get(b->cache, key);
			if (p)
				sum += (unsigned long)p->restarts + p->meta.uid.b[0];
			else
				misses++;
			cache_read_unlock();
		}
		ops += CHECK_EVERY;
	}
	rcu_unregister_thread();
	atomic_fetch_add(&b->misses, misses);
	w->ops = ops;
	atomic_fetch_add_explicit(&sink, sum, memory_order_relaxed);
	w->cpu_ns = thread_cpu_ns() - w->cpu_ns;
	return NULL;
}

static void *rwlock_reader(void *ud)
{
	struct worker *w = ud;
	struct bench *b = w->b;
	struct ptab *t = b->ptab;
	unsigned long ops = 0, misses = 0, sum = 0;

	pthread_barrier_wait(&b->start);
	w->cpu_ns = thread_cpu_ns();
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		for (int i = 0; i < CHECK_EVERY; i++) {
			const char *key = key_of(b, pick(&w->seed, b->n));
			unsigned long h = plain_hash(key);
			struct pent *e;

			pthread_rwlock_rdlock(&t->lock);
			e = ptab_find(t, key, h);
			if (e) {
				const struct kpod *p = (const void *)e->obj;
				sum += (unsigned long)p->restarts + p->meta.uid.b[0];
			} else {
				misses++;
			}
			pthread_rwlock_unlock(&t->lock);
		}
		ops += CHECK_EVERY;
	}
	atomic_fetch_add(&b->misses, misses);
	w->ops = ops;
	atomic_fetch_add_explicit(&sink, sum, memory_order_relaxed);
	w->cpu_ns = thread_cpu_ns() - w->cpu_ns;
	return NULL;
}

static void *rcu_writer(void *ud)
{
	struct worker *w = ud;
	struct bench *b = w->b;
	uint64_t rv = 1000000;

	rcu_register_thread();
	pthread_barrier_wait(&b->start);
	w->cpu_ns = thread_cpu_ns();
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		unsigned long k = pick(&w->seed, b->n);
		struct cache_obj *obj, *old;

		w->err = cache_project(b->cache, pod_json(&b->pool, k, ++rv), &obj);
		if (w->err < 0)
			break;
		cache_publish(b->cache, obj, &old);
		cache_retire(b->cache, old);
		w->ops++;
	}
	rcu_unregister_thread();
	w->cpu_ns = thread_cpu_ns() - w->cpu_ns;
	return NULL;
}

static void *rwlock_writer(void *ud)
{
	struct worker *w = ud;
	struct bench *b = w->b;
	struct ptab *t = b->ptab;
	uint64_t rv = 1000000;

	pthread_barrier_wait(&b->start);
	w->cpu_ns = thread_cpu_ns();
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		unsigned long k = pick(&w->seed, b->n);
		struct cache_obj *obj, *old = NULL;
		unsigned long h;
		struct pent *e;

		w->err = cache_project(b->cache, pod_json(&b->pool, k, ++rv), &obj);
		if (w->err < 0)
			break;
		h = plain_hash(obj->key);
		pthread_rwlock_wrlock(&t->lock);
		e = ptab_find(t, obj->key, h);
		if (e) {
			old = e->obj;
			e->obj = obj;
		}
		pthread_rwlock_unlock(&t->lock);
		cache_discard(b->cache, e ? old : obj); /* no reader can hold it now */
		w->ops++;
	}
	w->cpu_ns = thread_cpu_ns() - w->cpu_ns;
	return NULL;
}

/* ---- one measurement -------------------------------------------------- */

struct result {
	double lookups_per_s, updates_per_s;
	/* Per second of the threads' own CPU: what the machine's other load
	 * cannot lower (it takes CPU away, it does not slow a lookup). */
	double lookups_per_cpu_s, updates_per_cpu_s;
	double cores; /* CPU the process got: below 2 means others took some */
};

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int measure(struct bench *b, int readers, bool writer, double seconds, struct result *ret)
{
	struct worker w[3] = { 0 };
	bool rcu = b->ptab == NULL;
	uint64_t t0, t1, c0, c1;
	unsigned long lookups = 0;
	uint64_t reader_cpu = 0;
	int r = 0;

	atomic_store(&b->stop, false);
	atomic_store(&b->misses, 0);
	pthread_barrier_init(&b->start, NULL, (unsigned)readers + (writer ? 2 : 1));
	for (int i = writer ? 0 : 1; i <= readers; i++) {
		w[i].b = b;
		w[i].seed = 0x1234567ULL * (uint64_t)(i + 1) + (uint64_t)readers;
		if (pthread_create(&w[i].thread, NULL,
				   i == 0 ? (rcu ? rcu_writer : rwlock_writer) :
					    (rcu ? rcu_reader : rwlock_reader),
				   &w[i]) != 0) {
			fprintf(stderr, "bench_cache: pthread_create failed\n");
			exit(1); /* the barrier would never open */
		}
	}
	pthread_barrier_wait(&b->start);
	c0 = cpu_ns();
	t0 = ktime_mono_ns();
	struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&b->stop, true);
	t1 = ktime_mono_ns();
	c1 = cpu_ns();
	for (int i = writer ? 0 : 1; i <= readers; i++) {
		pthread_join(w[i].thread, NULL);
		if (i > 0) {
			lookups += w[i].ops;
			reader_cpu += w[i].cpu_ns;
		}
		if (w[i].err < 0)
			r = w[i].err;
	}
	pthread_barrier_destroy(&b->start);
	if (rcu)
		rcu_barrier(); /* free what the writer retired before the next run */
	if (r < 0)
		return r;
	if (atomic_load(&b->misses)) {
		fprintf(stderr, "bench_cache: %lu lookups found nothing\n",
			(unsigned long)atomic_load(&b->misses));
		return -ENOENT;
	}
	ret->lookups_per_s = (double)lookups / ((double)(t1 - t0) / 1e9);
	ret->updates_per_s = (double)w[0].ops / ((double)(t1 - t0) / 1e9);
	ret->cores = (double)(c1 - c0) / (double)(t1 - t0);
	ret->lookups_per_cpu_s = reader_cpu ? (double)lookups / ((double)reader_cpu / 1e9) : 0;
	ret->updates_per_cpu_s = w[0].cpu_ns ? (double)w[0].ops / ((double)w[0].cpu_ns / 1e9) : 0;
	return 0;
}

/* ---- setup ------------------------------------------------------------ */

static int preload_rcu(struct bench *b)
{
	for (unsigned long k = 0; k < b->n; k++) {
		struct cache_obj *obj, *old;
		int r = cache_project(b->cache, pod_json(&b->pool, k, 1000 + k), &obj);

		if (r < 0)
			return r;
		cache_publish(b->cache, obj, &old);
		cache_retire(b->cache, old);
	}
	return cache_count(b->cache) == b->n ? 0 : -EEXIST;
}

static char *make_keys(unsigned long n)
{
	char *keys = malloc(n * KEY_MAX);

	for (unsigned long k = 0; keys && k < n; k++) {
		struct podgen_pod p = podgen_pod_of(k, 0, PODGEN_OWNERS);
		podgen_key(&p, keys + k * KEY_MAX, KEY_MAX);
	}
	return keys;
}

static double env_seconds(void)
{
	const char *s = getenv("BENCH_SECONDS");
	char *end;
	double v = s ? strtod(s, &end) : 0;

	return s && *s && !*end && v > 0 && v < 30 ? v : 2.0;
}

static void print_side(const char *side, const struct result res[3])
{
	printf("cache_%s_lookups_per_s_1_reader_no_writer %.0f ops/s\n", side, res[0].lookups_per_s);
	printf("cache_%s_lookups_per_cpu_s_1_reader_no_writer %.0f ops/s\n", side,
	       res[0].lookups_per_cpu_s);
	printf("cache_%s_cpu_cores_1_reader_no_writer %.2f cores\n", side, res[0].cores);
	for (int i = 1; i <= 2; i++) {
		const char *suffix = i == 1 ? "1_reader" : "2_readers";

		printf("cache_%s_lookups_per_s_%s %.0f ops/s\n", side, suffix, res[i].lookups_per_s);
		printf("cache_%s_lookups_per_cpu_s_%s %.0f ops/s\n", side, suffix,
		       res[i].lookups_per_cpu_s);
		printf("cache_%s_writer_updates_per_s_%s %.0f ops/s\n", side, suffix,
		       res[i].updates_per_s);
		printf("cache_%s_writer_updates_per_cpu_s_%s %.0f ops/s\n", side, suffix,
		       res[i].updates_per_cpu_s);
		printf("cache_%s_cpu_cores_%s %.2f cores\n", side, suffix, res[i].cores);
	}
}

/* A lone reader, then 1 and 2 readers beside the writer. */
static int measure_all(struct bench *b, double seconds, struct result res[3])
{
	int r = measure(b, 1, false, seconds, &res[0]);

	for (int i = 1; i <= 2 && r == 0; i++)
		r = measure(b, i, true, seconds, &res[i]);
	return r;
}

static int run(struct bench *b, struct intern *interns, double seconds)
{
	struct result rcu[3], rw[3], rwp[3];
	int r;

	r = cache_new(&kind_pods, interns, &b->cache);
	if (r < 0)
		return r;
	r = preload_rcu(b);
	if (r == 0)
		r = measure_all(b, seconds, rcu);
	podgen_drain(b->cache, NULL, b->n, PODGEN_OWNERS);
	cache_free(b->cache);
	b->cache = NULL;
	if (r < 0)
		return r;

	/* The rwlock sides: a cache used only to project, and the plain
	 * table, with glibc's default lock (readers first) and with a writer-
	 * preferring one (as sync.RWMutex in client-go's store). */
	for (int side = 0; side < 2; side++) {
		b->prefer_writer = side == 1;
		r = cache_new(&kind_pods, interns, &b->cache);
		if (r == 0)
			r = ptab_new(b, &b->ptab);
		if (r == 0)
			r = measure_all(b, seconds, side ? rwp : rw);
		ptab_free(b->ptab, b->cache, b->n);
		b->ptab = NULL;
		cache_free(b->cache);
		b->cache = NULL;
		if (r < 0)
			return r;
	}

	print_side("rcu", rcu);
	print_side("rwlock", rw);
	print_side("rwlock_wp", rwp);
	for (int side = 0; side < 2; side++) {
		const struct result *o = side ? rwp : rw;
		const char *name = side ? "rwlock_wp" : "rwlock";

		printf("cache_rcu_over_%s_lookups_1_reader_no_writer %.2f ratio\n", name,
		       rcu[0].lookups_per_s / o[0].lookups_per_s);
		for (int i = 1; i <= 2; i++) {
			const char *suffix = i == 1 ? "1_reader" : "2_readers";

			printf("cache_rcu_over_%s_lookups_%s %.2f ratio\n", name, suffix,
			       rcu[i].lookups_per_s / o[i].lookups_per_s);
			printf("cache_rcu_over_%s_updates_%s %.2f ratio\n", name, suffix,
			       rcu[i].updates_per_s / o[i].updates_per_s);
		}
	}
	return 0;
}

int main(void)
{
	struct bench b = { .n = podgen_env_n(100000) };
	struct podgen *g = NULL;
	struct intern *interns = NULL;
	char *keys = NULL;
	int r;

	keys_register();
	rcu_register_thread();
	r = podgen_new(KINFER_TEST_DATA "/pod.json", &g);
	if (r < 0) {
		fprintf(stderr, "bench_cache: %s/pod.json: %s\n", KINFER_TEST_DATA, strerror(-r));
		goto out;
	}
	r = intern_new(&interns);
	if (r < 0)
		goto out;
	r = pool_init(&b.pool, g);
	if (r < 0)
		goto out;
	keys = make_keys(b.n);
	if (!keys) {
		r = -ENOMEM;
		goto out;
	}
	b.keys = keys;
	r = run(&b, interns, env_seconds());
	if (r < 0)
		fprintf(stderr, "bench_cache: %s\n", strerror(-r));
out:
	free(keys);
	pool_free(&b.pool);
	intern_free(interns);
	podgen_free(g);
	rcu_unregister_thread();
	return r < 0 ? 1 : 0;
}
