/*
 * Backoff: pure arithmetic plus a xorshift generator, so tests can seed it
 * and check every step.
 */
#include "backoff.h"

#include <time.h>

double backoff_rand01(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return (double)(x >> 11) / (double)(1ULL << 53);
}

uint64_t backoff_seed(void)
{
	struct timespec ts;
	int local;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&local;
	return s ? s : 1;
}

/* splitmix64: spreads nearby seeds (1, 2, 3 ...) over the whole state. */
static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void backoff_init(struct backoff *b, uint64_t base_ns, uint64_t cap_ns, double jitter, uint64_t seed)
{
	b->base_ns = base_ns;
	b->cap_ns = cap_ns < base_ns ? base_ns : cap_ns;
	b->cur_ns = base_ns;
	b->jitter = jitter < 0 ? 0 : jitter;
	b->rng = mix(seed);
	if (!b->rng)
		b->rng = 1;
}

uint64_t backoff_next(struct backoff *b)
{
	uint64_t d = b->cur_ns;
	if (b->jitter > 0)
		d += (uint64_t)((double)d * b->jitter * backoff_rand01(&b->rng));
	if (b->cur_ns > b->cap_ns / 2)
		b->cur_ns = b->cap_ns;
	else
		b->cur_ns *= 2;
	return d;
}

void backoff_reset(struct backoff *b)
{
	b->cur_ns = b->base_ns;
}
