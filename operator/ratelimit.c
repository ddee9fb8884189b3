/*
 * Token bucket. Tokens may go negative: each reservation past the bucket
 * queues behind the previous ones, so waiters are served in order and the
 * long-run rate never exceeds qps.
 */
#include "ratelimit.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct ratelimit {
	pthread_mutex_t lock;
	double qps;
	double burst;
	double tokens;
	uint64_t last_ns;
	int started;
};

int ratelimit_new(double qps, int burst, struct ratelimit **ret)
{
	struct ratelimit *rl;

	if (burst < 1 && qps > 0)
		return -EINVAL;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	pthread_mutex_init(&rl->lock, NULL);
	rl->qps = qps;
	rl->burst = burst;
	rl->tokens = burst;
	*ret = rl;
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

/* The bucket as of now_ns (full at the first use); rl->lock held. */
static void refill_locked(struct ratelimit *rl, uint64_t now_ns)
{
	if (!rl->started) {
		rl->last_ns = now_ns;
		rl->started = 1;
	}
	if (now_ns > rl->last_ns) {
		rl->tokens += ktime_ns_to_s(now_ns - rl->last_ns) * rl->qps;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
		rl->last_ns = now_ns;
	}
}

uint64_t ratelimit_reserve_at(struct ratelimit *rl, uint64_t now_ns)
{
	uint64_t wait = 0;

	if (!rl || rl->qps <= 0)
		return 0;
	pthread_mutex_lock(&rl->lock);
	refill_locked(rl, now_ns);
	rl->tokens -= 1.0;
	if (rl->tokens < 0)
		wait = (uint64_t)(-rl->tokens / rl->qps * (double)KTIME_NSEC_PER_SEC);
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

uint64_t ratelimit_until_at(struct ratelimit *rl, double want, uint64_t now_ns)
{
	double tokens;

	if (!rl || rl->qps <= 0)
		return 0;
	pthread_mutex_lock(&rl->lock);
	refill_locked(rl, now_ns);
	tokens = rl->tokens;
	if (want > rl->burst)
		want = rl->burst;
	pthread_mutex_unlock(&rl->lock);
	if (tokens >= want)
		return 0;
	return (uint64_t)((want - tokens) / rl->qps * (double)KTIME_NSEC_PER_SEC) + 1;
}

int ratelimit_burst(const struct ratelimit *rl)
{
	return rl ? (int)rl->burst : 0;
}

uint64_t ratelimit_wait(struct ratelimit *rl)
{
	uint64_t wait = ratelimit_reserve_at(rl, ktime_mono_ns());
	if (wait > 0) {
		struct timespec ts = ktime_timespec(wait);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return wait;
}
