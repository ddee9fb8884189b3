/*
 * workqueue: client-go's guarantees — dedup, never two workers on one key,
 * re-add while processing, delays, per-key backoff — and a hammer test of
 * workers and producers on the same few keys (run under TSan in CI).
 */
#include "unit.h"

#include "backoff.h"
#include "ratelimit.h"
#include "workqueue.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static struct workqueue *newq(void)
{
	struct workqueue_options o = { .name = "test", .qps = -1 };
	struct workqueue *q;
	assert_int_equal(workqueue_new(&o, &q), 0);
	return q;
}

static void dedup_and_fifo(void **state)
{
	struct workqueue *q = newq();
	const char *k;
	(void)state;
	workqueue_add(q, "a");
	workqueue_add(q, "b");
	workqueue_add(q, "a");
	struct workqueue_stats s;
	workqueue_stats(q, &s);
	assert_int_equal(s.depth, 2);
	assert_int_equal(workqueue_get(q, 0, &k), 0);
	assert_string_equal(k, "a");
	workqueue_done(q, k);
	assert_int_equal(workqueue_get(q, 0, &k), 0);
	assert_string_equal(k, "b");
	workqueue_done(q, k);
	assert_int_equal(workqueue_get(q, 1000000, &k), -ETIMEDOUT);
	workqueue_free(q);
}

static void readd_while_processing(void **state)
{
	struct workqueue *q = newq();
	const char *k, *k2;
	(void)state;
	workqueue_add(q, "a");
	assert_int_equal(workqueue_get(q, 0, &k), 0);
	/* Added while processing: not handed out to a second worker ... */
	workqueue_add(q, "a");
	assert_int_equal(workqueue_get(q, 1000000, &k2), -ETIMEDOUT);
	/* ... but queued again once the first worker is done. */
	workqueue_done(q, k);
	assert_int_equal(workqueue_get(q, 0, &k2), 0);
	assert_string_equal(k2, "a");
	workqueue_done(q, k2);
	workqueue_free(q);
}

static void add_after_earliest_wins(void **state)
{
	struct workqueue *q = newq();
	const char *k;
	(void)state;
	uint64_t t0 = ktime_mono_ns();
	workqueue_add_after(q, "late", 400 * KTIME_NSEC_PER_MSEC);
	workqueue_add_after(q, "x", 300 * KTIME_NSEC_PER_MSEC);
	workqueue_add_after(q, "x", 50 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(workqueue_get(q, KTIME_NSEC_PER_SEC, &k), 0);
	assert_string_equal(k, "x");
	uint64_t dt = ktime_mono_ns() - t0;
	assert_true(dt >= 50 * KTIME_NSEC_PER_MSEC && dt < 250 * KTIME_NSEC_PER_MSEC);
	workqueue_done(q, k);
	assert_int_equal(workqueue_get(q, KTIME_NSEC_PER_SEC, &k), 0);
	assert_string_equal(k, "late");
	assert_true(ktime_mono_ns() - t0 >= 400 * KTIME_NSEC_PER_MSEC);
	workqueue_done(q, k);
	workqueue_free(q);
}

static void backoff_doubles_and_forget_resets(void **state)
{
	struct workqueue_options o = { .name = "t",
				       .qps = -1,
				       .base_delay_ns = 20 * KTIME_NSEC_PER_MSEC };
	struct workqueue *q;
	const char *k;
	(void)state;
	assert_int_equal(workqueue_new(&o, &q), 0);
	uint64_t delays[3];
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = ktime_mono_ns();
		workqueue_add_rate_limited(q, "k");
		assert_int_equal(workqueue_get(q, KTIME_NSEC_PER_SEC, &k), 0);
		delays[i] = ktime_mono_ns() - t0;
		workqueue_done(q, k);
	}
	assert_int_equal(workqueue_requeues(q, "k"), 3);
	assert_true(delays[0] >= 20 * KTIME_NSEC_PER_MSEC);
	assert_true(delays[1] >= 40 * KTIME_NSEC_PER_MSEC);
	assert_true(delays[2] >= 80 * KTIME_NSEC_PER_MSEC);
	workqueue_forget(q, "k");
	assert_int_equal(workqueue_requeues(q, "k"), 0);
	workqueue_free(q);
}

static void shutdown_wakes_workers(void **state)
{
	struct workqueue *q = newq();
	const char *k;
	(void)state;
	workqueue_add(q, "a");
	workqueue_shutdown(q);
	assert_int_equal(workqueue_get(q, 0, &k), -ESHUTDOWN);
	assert_int_equal(workqueue_add(q, "b"), -ESHUTDOWN);
	workqueue_free(q);
}

static void bounded_keys(void **state)
{
	struct workqueue_options o = { .name = "t", .qps = -1, .max_keys = 2 };
	struct workqueue *q;
	(void)state;
	assert_int_equal(workqueue_new(&o, &q), 0);
	assert_int_equal(workqueue_add(q, "a"), 0);
	assert_int_equal(workqueue_add(q, "b"), 0);
	assert_int_equal(workqueue_add(q, "c"), -ENOBUFS);
	workqueue_free(q);
}

/* ---- hammer ---------------------------------------------------------- */

#define KEYS 8
struct hammer {
	struct workqueue *q;
	atomic_int busy[KEYS];
	atomic_int violations;
	atomic_int processed;
	atomic_int stop;
};

static void *producer(void *ud)
{
	struct hammer *h = ud;
	char key[8];
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%d", i % KEYS);
		if (i % 7 == 0)
			workqueue_add_after(h->q, key, 1000);
		else
			workqueue_add(h->q, key);
	}
	return NULL;
}

static void *worker(void *ud)
{
	struct hammer *h = ud;
	const char *k;
	while (workqueue_get(h->q, 0, &k) == 0) {
		int i = k[1] - '0';
		if (atomic_fetch_add(&h->busy[i], 1) != 0)
			atomic_fetch_add(&h->violations, 1);
		atomic_fetch_add(&h->processed, 1);
		atomic_fetch_sub(&h->busy[i], 1);
		workqueue_done(h->q, k);
	}
	return NULL;
}

static void hammer_no_key_on_two_workers(void **state)
{
	struct hammer h = { 0 };
	pthread_t p[2], w[4];
	(void)state;
	h.q = newq();
	for (int i = 0; i < 4; i++)
		pthread_create(&w[i], NULL, worker, &h);
	for (int i = 0; i < 2; i++)
		pthread_create(&p[i], NULL, producer, &h);
	for (int i = 0; i < 2; i++)
		pthread_join(p[i], NULL);
	/* Let the last adds drain (at most 10 s: valgrind on a loaded machine),
	 * then stop the workers. */
	for (int i = 0; i < 1000; i++) {
		struct workqueue_stats s;
		workqueue_stats(h.q, &s);
		if (!s.depth && !s.waiting && !s.processing)
			break;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	workqueue_shutdown(h.q);
	for (int i = 0; i < 4; i++)
		pthread_join(w[i], NULL);
	assert_int_equal(atomic_load(&h.violations), 0);
	/* Dedup merges adds: far fewer runs than adds, but at least one per key. */
	assert_true(atomic_load(&h.processed) >= KEYS);
	assert_true(atomic_load(&h.processed) <= 40000);
	workqueue_free(h.q);
}

int tests_workqueue(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dedup_and_fifo),
		cmocka_unit_test(readd_while_processing),
		cmocka_unit_test(add_after_earliest_wins),
		cmocka_unit_test(backoff_doubles_and_forget_resets),
		cmocka_unit_test(shutdown_wakes_workers),
		cmocka_unit_test(bounded_keys),
		cmocka_unit_test(hammer_no_key_on_two_workers),
	};
	return cmocka_run_group_tests_name("workqueue", tests, NULL, NULL);
}
