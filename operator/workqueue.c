/*
 * Work queue. One mutex guards everything: a map of items by key, a FIFO
 * of ready items and a min-heap of delayed ones. Delayed items move to the
 * FIFO lazily, whenever a worker looks (workers wait on the condition
 * variable with a deadline at the heap's head), so no timer thread exists.
 */
#include "workqueue.h"

#include "backoff.h"
#include "metrics.h"
#include "ratelimit.h"
#include "ktime.h"
#include "fnv.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
	struct item *next_in_bucket;
	bool dirty;  /* wants processing (in the FIFO, or re-add after done) */
	bool queued; /* in the FIFO */
	bool processing;
	size_t heap_index; /* SIZE_MAX = not waiting */
	uint64_t ready_at; /* when waiting */
	uint64_t started;  /* when processing */
	unsigned failures;
	uint32_t hash;
	char key[];
};

struct workqueue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct workqueue_options o;
	char *name;
	struct ratelimit *bucket;

	struct item **buckets;
	size_t n_buckets, n_items;

	struct item **fifo; /* ring buffer */
	size_t fifo_head, fifo_len, fifo_cap;

	struct item **heap;
	size_t heap_len, heap_cap;

	size_t n_processing;
	uint64_t adds, retries;
	bool shutting_down;

	struct metric_series *m_depth, *m_adds, *m_retries, *m_longest, *m_unfinished;
};

static const char *const q_labels[] = { "name", NULL };
static const struct metric_family fam_depth = {
	"kinfer_workqueue_depth", "Keys waiting in the work queue.", METRIC_GAUGE, q_labels, NULL, 0
};
static const struct metric_family fam_adds = { "kinfer_workqueue_adds_total",
					       "Keys added to the work queue.",
					       METRIC_COUNTER,
					       q_labels,
					       NULL,
					       0 };
static const struct metric_family fam_retries = { "kinfer_workqueue_retries_total",
						  "Rate-limited re-adds (retries) of keys.",
						  METRIC_COUNTER,
						  q_labels,
						  NULL,
						  0 };
static const struct metric_family fam_longest = {
	"kinfer_workqueue_longest_running_processor_seconds",
	"How long the longest-running reconcile of this queue has been running.",
	METRIC_GAUGE,
	q_labels,
	NULL,
	0
};
static const struct metric_family fam_unfinished = { "kinfer_workqueue_unfinished_work_seconds",
						     "Seconds of work in progress that has not finished.",
						     METRIC_GAUGE,
						     q_labels,
						     NULL,
						     0 };

static uint32_t hash_key(const char *s)
{
	return fnv32_str(s);
}

int workqueue_new(const struct workqueue_options *o, struct workqueue **ret)
{
	struct workqueue *q = calloc(1, sizeof(*q));
	int r = -ENOMEM;

	if (!q)
		return -ENOMEM;
	q->o = *o;
	if (!q->o.base_delay_ns)
		q->o.base_delay_ns = 5 * KTIME_NSEC_PER_MSEC;
	if (!q->o.max_delay_ns)
		q->o.max_delay_ns = 1000 * KTIME_NSEC_PER_SEC;
	if (q->o.qps == 0)
		q->o.qps = 10;
	if (q->o.burst <= 0)
		q->o.burst = 100;
	if (!q->o.max_keys)
		q->o.max_keys = 1000000;
	q->name = strdup(o->name ? o->name : "default");
	q->n_buckets = 1024;
	q->buckets = calloc(q->n_buckets, sizeof(*q->buckets));
	if (!q->name || !q->buckets)
		goto fail;
	r = ratelimit_new(q->o.qps, q->o.burst, &q->bucket);
	if (r < 0)
		goto fail;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	const char *lv[] = { q->name };
	q->m_depth = metrics_series(o->metrics, &fam_depth, lv);
	q->m_adds = metrics_series(o->metrics, &fam_adds, lv);
	q->m_retries = metrics_series(o->metrics, &fam_retries, lv);
	q->m_longest = metrics_series(o->metrics, &fam_longest, lv);
	q->m_unfinished = metrics_series(o->metrics, &fam_unfinished, lv);
	*ret = q;
	return 0;
fail:
	free(q->name);
	free(q->buckets);
	free(q);
	return r;
}

void workqueue_free(struct workqueue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n_buckets; i++)
		for (struct item *it = q->buckets[i], *n; it; it = n) {
			n = it->next_in_bucket;
			free(it);
		}
	free(q->buckets);
	free(q->fifo);
	free(q->heap);
	ratelimit_free(q->bucket);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->name);
	free(q);
}

/* ---- the item map ---------------------------------------------------- */

static struct item *find(struct workqueue *q, const char *key, uint32_t h)
{
	for (struct item *it = q->buckets[h & (q->n_buckets - 1)]; it; it = it->next_in_bucket)
		if (it->hash == h && strcmp(it->key, key) == 0)
			return it;
	return NULL;
}

static void grow_map(struct workqueue *q)
{
	size_t nb = q->n_buckets * 2;
	struct item **b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < q->n_buckets; i++)
		for (struct item *it = q->buckets[i], *n; it; it = n) {
			n = it->next_in_bucket;
			it->next_in_bucket = b[it->hash & (nb - 1)];
			b[it->hash & (nb - 1)] = it;
		}
	free(q->buckets);
	q->buckets = b;
	q->n_buckets = nb;
}

static int get_item(struct workqueue *q, const char *key, struct item **ret)
{
	uint32_t h = hash_key(key);
	struct item *it = find(q, key, h);
	size_t len;

	if (it) {
		*ret = it;
		return 0;
	}
	if (q->n_items >= q->o.max_keys)
		return -ENOBUFS;
	len = strlen(key);
	it = calloc(1, sizeof(*it) + len + 1);
	if (!it)
		return -ENOMEM;
	memcpy(it->key, key, len + 1);
	it->hash = h;
	it->heap_index = SIZE_MAX;
	it->next_in_bucket = q->buckets[h & (q->n_buckets - 1)];
	q->buckets[h & (q->n_buckets - 1)] = it;
	if (++q->n_items > q->n_buckets)
		grow_map(q);
	*ret = it;
	return 0;
}

/* Free an item nobody needs any more. */
static void maybe_drop(struct workqueue *q, struct item *it)
{
	struct item **pp;
	if (it->dirty || it->queued || it->processing || it->heap_index != SIZE_MAX || it->failures)
		return;
	for (pp = &q->buckets[it->hash & (q->n_buckets - 1)]; *pp; pp = &(*pp)->next_in_bucket)
		if (*pp == it) {
			*pp = it->next_in_bucket;
			break;
		}
	q->n_items--;
	free(it);
}

/* ---- FIFO and heap --------------------------------------------------- */

static int fifo_push(struct workqueue *q, struct item *it)
{
	if (q->fifo_len == q->fifo_cap) {
		size_t cap = q->fifo_cap ? q->fifo_cap * 2 : 64;
		struct item **f = malloc(cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		for (size_t i = 0; i < q->fifo_len; i++)
			f[i] = q->fifo[(q->fifo_head + i) % q->fifo_cap];
		free(q->fifo);
		q->fifo = f;
		q->fifo_cap = cap;
		q->fifo_head = 0;
	}
	q->fifo[(q->fifo_head + q->fifo_len) % q->fifo_cap] = it;
	q->fifo_len++;
	it->queued = true;
	return 0;
}

static struct item *fifo_pop(struct workqueue *q)
{
	struct item *it = q->fifo[q->fifo_head];
	q->fifo_head = (q->fifo_head + 1) % q->fifo_cap;
	q->fifo_len--;
	it->queued = false;
	return it;
}

static void heap_swap(struct workqueue *q, size_t a, size_t b)
{
	struct item *t = q->heap[a];
	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->heap_index = a;
	q->heap[b]->heap_index = b;
}

static void heap_up(struct workqueue *q, size_t i)
{
	while (i > 0 && q->heap[(i - 1) / 2]->ready_at > q->heap[i]->ready_at) {
		heap_swap(q, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct workqueue *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < q->heap_len && q->heap[l]->ready_at < q->heap[m]->ready_at)
			m = l;
		if (r < q->heap_len && q->heap[r]->ready_at < q->heap[m]->ready_at)
			m = r;
		if (m == i)
			return;
		heap_swap(q, i, m);
		i = m;
	}
}

static struct item *heap_pop(struct workqueue *q)
{
	struct item *top = q->heap[0];
	heap_swap(q, 0, q->heap_len - 1);
	q->heap_len--;
	if (q->heap_len)
		heap_down(q, 0);
	top->heap_index = SIZE_MAX;
	return top;
}

/* ---- adding ---------------------------------------------------------- */

/* Mark dirty and queue unless it is queued already or being processed. */
static int add_locked(struct workqueue *q, struct item *it)
{
	q->adds++;
	metric_add(q->m_adds, 1);
	if (it->dirty)
		return 0;
	it->dirty = true;
	if (it->processing)
		return 0; /* queued again by workqueue_done */
	int r = fifo_push(q, it);
	if (r < 0) {
		it->dirty = false;
		return r;
	}
	pthread_cond_signal(&q->cond);
	return 0;
}

/* Move every delayed item whose time has come to the FIFO. */
static void promote_ready(struct workqueue *q, uint64_t now)
{
	while (q->heap_len && q->heap[0]->ready_at <= now) {
		struct item *it = heap_pop(q);
		if (add_locked(q, it) < 0)
			maybe_drop(q, it);
	}
}

int workqueue_add(struct workqueue *q, const char *key)
{
	struct item *it;
	int r;
	pthread_mutex_lock(&q->lock);
	if (q->shutting_down) {
		r = -ESHUTDOWN;
		goto out;
	}
	r = get_item(q, key, &it);
	if (r == 0)
		r = add_locked(q, it);
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

int workqueue_add_after(struct workqueue *q, const char *key, uint64_t delay_ns)
{
	struct item *it;
	int r;

	if (delay_ns == 0)
		return workqueue_add(q, key);
	pthread_mutex_lock(&q->lock);
	if (q->shutting_down) {
		r = -ESHUTDOWN;
		goto out;
	}
	r = get_item(q, key, &it);
	if (r < 0)
		goto out;
	uint64_t at = ktime_mono_ns() + delay_ns;
	if (it->heap_index != SIZE_MAX) {
		if (at < it->ready_at) { /* the earliest wins */
			it->ready_at = at;
			heap_up(q, it->heap_index);
		}
		goto out;
	}
	if (q->heap_len == q->heap_cap) {
		size_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
		struct item **h = realloc(q->heap, cap * sizeof(*h));
		if (!h) {
			maybe_drop(q, it);
			r = -ENOMEM;
			goto out;
		}
		q->heap = h;
		q->heap_cap = cap;
	}
	it->ready_at = at;
	it->heap_index = q->heap_len;
	q->heap[q->heap_len++] = it;
	heap_up(q, it->heap_index);
	pthread_cond_broadcast(&q->cond); /* a waiter may need an earlier deadline */
out:
	pthread_mutex_unlock(&q->lock);
	return r;
}

int workqueue_add_rate_limited(struct workqueue *q, const char *key)
{
	struct item *it;
	uint64_t item_delay, bucket_delay;
	int r;

	pthread_mutex_lock(&q->lock);
	if (q->shutting_down) {
		pthread_mutex_unlock(&q->lock);
		return -ESHUTDOWN;
	}
	r = get_item(q, key, &it);
	if (r < 0) {
		pthread_mutex_unlock(&q->lock);
		return r;
	}
	/* base * 2^failures, capped (client-go ItemExponentialFailureRateLimiter). */
	item_delay = q->o.base_delay_ns;
	for (unsigned i = 0; i < it->failures && item_delay < q->o.max_delay_ns; i++)
		item_delay *= 2;
	if (item_delay > q->o.max_delay_ns)
		item_delay = q->o.max_delay_ns;
	it->failures++;
	q->retries++;
	metric_add(q->m_retries, 1);
	pthread_mutex_unlock(&q->lock);
	bucket_delay = ratelimit_reserve_at(q->bucket, ktime_mono_ns());
	return workqueue_add_after(q, key, item_delay > bucket_delay ? item_delay : bucket_delay);
}

void workqueue_forget(struct workqueue *q, const char *key)
{
	struct item *it;
	pthread_mutex_lock(&q->lock);
	it = find(q, key, hash_key(key));
	if (it) {
		it->failures = 0;
		maybe_drop(q, it);
	}
	pthread_mutex_unlock(&q->lock);
}

int workqueue_requeues(struct workqueue *q, const char *key)
{
	struct item *it;
	int n = 0;
	pthread_mutex_lock(&q->lock);
	it = find(q, key, hash_key(key));
	if (it)
		n = (int)it->failures;
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* ---- taking work ----------------------------------------------------- */

static void deadline_ts(uint64_t mono_deadline, struct timespec *ts)
{
	/* The condition variable uses CLOCK_MONOTONIC (see workqueue_new). */
	*ts = ktime_timespec(mono_deadline);
}

int workqueue_get(struct workqueue *q, uint64_t timeout_ns, const char **ret_key)
{
	uint64_t give_up = timeout_ns ? ktime_mono_ns() + timeout_ns : UINT64_MAX;
	struct item *it;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		uint64_t now = ktime_mono_ns();
		if (q->shutting_down) {
			pthread_mutex_unlock(&q->lock);
			return -ESHUTDOWN;
		}
		promote_ready(q, now);
		if (q->fifo_len)
			break;
		if (now >= give_up) {
			pthread_mutex_unlock(&q->lock);
			return -ETIMEDOUT;
		}
		uint64_t until = give_up;
		if (q->heap_len && q->heap[0]->ready_at < until)
			until = q->heap[0]->ready_at;
		if (until == UINT64_MAX) {
			pthread_cond_wait(&q->cond, &q->lock);
		} else {
			struct timespec ts;
			deadline_ts(until, &ts);
			pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		}
	}
	it = fifo_pop(q);
	it->dirty = false;
	it->processing = true;
	it->started = ktime_mono_ns();
	q->n_processing++;
	*ret_key = it->key;
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void workqueue_done(struct workqueue *q, const char *key)
{
	struct item *it;
	pthread_mutex_lock(&q->lock);
	it = find(q, key, hash_key(key));
	if (it && it->processing) {
		it->processing = false;
		q->n_processing--;
		if (it->dirty && !q->shutting_down) {
			if (fifo_push(q, it) == 0)
				pthread_cond_signal(&q->cond);
			else
				it->dirty = false;
		}
		maybe_drop(q, it);
	}
	pthread_mutex_unlock(&q->lock);
}

void workqueue_shutdown(struct workqueue *q)
{
	pthread_mutex_lock(&q->lock);
	q->shutting_down = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void workqueue_stats(struct workqueue *q, struct workqueue_stats *s)
{
	uint64_t now = ktime_mono_ns(), oldest = now;
	double unfinished = 0;

	pthread_mutex_lock(&q->lock);
	memset(s, 0, sizeof(*s));
	s->depth = q->fifo_len;
	s->waiting = q->heap_len;
	s->processing = q->n_processing;
	s->adds = q->adds;
	s->retries = q->retries;
	if (q->n_processing)
		for (size_t i = 0; i < q->n_buckets; i++)
			for (struct item *it = q->buckets[i]; it; it = it->next_in_bucket)
				if (it->processing) {
					if (it->started < oldest)
						oldest = it->started;
					unfinished += ktime_ns_to_s(now - it->started);
				}
	pthread_mutex_unlock(&q->lock);
	s->longest_running_s = ktime_ns_to_s(now - oldest);
	s->unfinished_s = unfinished;
}

void workqueue_update_metrics(struct workqueue *q)
{
	struct workqueue_stats s;
	workqueue_stats(q, &s);
	metric_set(q->m_depth, (double)s.depth);
	metric_set(q->m_longest, s.longest_running_s);
	metric_set(q->m_unfinished, s.unfinished_s);
}
