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
/* Reserve and sleep for it. Returns the ns slept. */
uint64_t ratelimit_wait(struct ratelimit *rl);
