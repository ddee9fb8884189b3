/*
 * The work queue, with client-go's semantics:
 *
 * - a key is in the queue at most once (the dirty set);
 * - a key is never handed to two workers at once (the processing set): a
 *   key added while it is being processed is queued again when the worker
 *   calls workqueue_done;
 * - workqueue_add_after delays an add (the earliest of several wins);
 * - workqueue_add_rate_limited waits the larger of the key's exponential
 *   backoff (base doubling per failure up to max) and an overall token
 *   bucket, as client-go's DefaultControllerRateLimiter; workqueue_forget
 *   clears the key's failures after a success.
 *
 * Keys carry no event: reconcilers read the whole state each time.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct metrics;
struct workqueue;

struct workqueue_options {
	const char *name;        /* for metrics */
	uint64_t base_delay_ns;  /* 0 = 5 ms */
	uint64_t max_delay_ns;   /* 0 = 1000 s */
	double qps;              /* overall bucket; 0 = 10, <0 = none */
	int burst;               /* 0 = 100 */
	size_t max_keys;         /* bound on distinct keys; 0 = 1,000,000 */
	struct metrics *metrics; /* NULL = none */
};

int workqueue_new(const struct workqueue_options *o, struct workqueue **ret);
void workqueue_free(struct workqueue *q);

/* 0, -ESHUTDOWN after shutdown, -ENOBUFS past max_keys, -ENOMEM. */
int workqueue_add(struct workqueue *q, const char *key);
int workqueue_add_after(struct workqueue *q, const char *key, uint64_t delay_ns);
int workqueue_add_rate_limited(struct workqueue *q, const char *key);
void workqueue_forget(struct workqueue *q, const char *key);
int workqueue_requeues(struct workqueue *q, const char *key);

/*
 * Wait for a key. Returns 0 and *ret_key (valid until workqueue_done), or
 * -ESHUTDOWN once the queue is shut down, or -ETIMEDOUT after timeout_ns
 * (0 = wait forever).
 */
int workqueue_get(struct workqueue *q, uint64_t timeout_ns, const char **ret_key);
void workqueue_done(struct workqueue *q, const char *key);

/* Stop handing out keys and refuse adds; workers blocked in get return. */
void workqueue_shutdown(struct workqueue *q);

struct workqueue_stats {
	size_t depth;   /* ready to hand out */
	size_t waiting; /* delayed */
	size_t processing;
	uint64_t adds, retries;
	double longest_running_s; /* the oldest key now being processed */
	double unfinished_s;      /* sum over keys being processed */
};
void workqueue_stats(struct workqueue *q, struct workqueue_stats *ret);
/* Push the stats into the metrics registry (the manager calls it). */
void workqueue_update_metrics(struct workqueue *q);
