/*
 * A token bucket (the shape of client-go's QPS/Burst limiter): up to burst
 * requests at once, refilled at qps per second. Thread-safe. A qps of 0 or
 * less means no limit.
 */
#pragma once

#include <stdint.h>

struct ratelimit;

int ratelimit_new(double qps, int burst, struct ratelimit **ret);
void ratelimit_free(struct ratelimit *rl);

/*
 * Take one token at time now_ns (CLOCK_MONOTONIC); returns how many ns the
 * caller must wait before using it (0 = at once). The token is reserved
 * either way, as x/time/rate's Reserve does.
 */
uint64_t ratelimit_reserve_at(struct ratelimit *rl, uint64_t now_ns);
/*
 * How long from now_ns until the bucket holds at least want tokens again
 * (0: it does now), without taking any: for a request that can wait for a
 * quieter moment. 0 when there is no limit.
 */
uint64_t ratelimit_until_at(struct ratelimit *rl, double want, uint64_t now_ns);
int ratelimit_burst(const struct ratelimit *rl);
/* Reserve and sleep for it. Returns the ns slept. */
uint64_t ratelimit_wait(struct ratelimit *rl);
