/*
 * Exponential backoff with jitter, the shape client-go uses: each step
 * waits cur * (1 + jitter * U[0,1)), then cur doubles up to cap.
 *
 * The struct is public (not opaque) on purpose: it is a small value type
 * embedded in informers, queues and clients, and needs no allocation.
 */
#pragma once

#include <stdint.h>

struct backoff {
	uint64_t base_ns;
	uint64_t cap_ns;
	uint64_t cur_ns;
	double jitter; /* 0 = none, 1 = up to +100% */
	uint64_t rng;  /* xorshift state, never 0 */
};

void backoff_init(struct backoff *b, uint64_t base_ns, uint64_t cap_ns, double jitter, uint64_t seed);
/* The delay to wait now; advances the state. */
uint64_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

/* A uniform double in [0,1) from a xorshift64 state. */
double backoff_rand01(uint64_t *state);
/* A seed from the clock and the address of a local, for per-object RNGs. */
uint64_t backoff_seed(void);
