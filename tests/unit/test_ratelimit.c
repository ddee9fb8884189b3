/* ratelimit: burst at once, then exactly qps, with an injected clock. */
#include "unit.h"

#include "backoff.h"
#include "ratelimit.h"
#include "ktime.h"

#include <errno.h>

static void burst_then_rate(void **state)
{
	struct ratelimit *rl;
	uint64_t t = 1000 * KTIME_NSEC_PER_SEC;
	(void)state;
	assert_int_equal(ratelimit_new(10, 5, &rl), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_reserve_at(rl, t), 0);
	/* The 6th waits one token time (100 ms), the 7th two. */
	assert_int_equal(ratelimit_reserve_at(rl, t), 100 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(ratelimit_reserve_at(rl, t), 200 * KTIME_NSEC_PER_MSEC);
	/* After 1 s the debt (2) is repaid and 8 tokens accrued, capped at 5. */
	t += KTIME_NSEC_PER_SEC;
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_reserve_at(rl, t), 0);
	assert_true(ratelimit_reserve_at(rl, t) > 0);
	ratelimit_free(rl);
}

static void long_run_rate(void **state)
{
	struct ratelimit *rl;
	uint64_t t = 0, granted = 0;
	(void)state;
	assert_int_equal(ratelimit_new(50, 1, &rl), 0);
	/* Callers that sleep as told get 50/s over 10 s, not more. */
	while (t < 10 * KTIME_NSEC_PER_SEC) {
		uint64_t w = ratelimit_reserve_at(rl, t);
		t += w;
		if (t < 10 * KTIME_NSEC_PER_SEC)
			granted++;
	}
	assert_in_range(granted, 499, 501);
	ratelimit_free(rl);
}

static void unlimited_and_invalid(void **state)
{
	struct ratelimit *rl;
	(void)state;
	assert_int_equal(ratelimit_new(-1, 0, &rl), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ratelimit_reserve_at(rl, 0), 0);
	ratelimit_free(rl);
	assert_int_equal(ratelimit_new(10, 0, &rl), -EINVAL);
	ratelimit_free(NULL);
}

/* ratelimit_until_at: how long until the bucket holds want tokens again,
 * taking none (the low-priority Events wait for half the burst). */
static void until_quiet(void **state)
{
	(void)state;
	struct ratelimit *rl;
	uint64_t t = 1000 * KTIME_NSEC_PER_SEC;

	assert_int_equal(ratelimit_new(10, 10, &rl), 0);
	assert_int_equal(ratelimit_burst(rl), 10);
	assert_int_equal(ratelimit_until_at(rl, 5, t), 0); /* full before any use */
	for (int i = 0; i < 10; i++)
		assert_int_equal(ratelimit_reserve_at(rl, t), 0);
	/* Empty: 5 tokens at 10/s are 0.5 s away; asking took none. */
	uint64_t d = ratelimit_until_at(rl, 5, t);
	assert_true(d >= 500 * KTIME_NSEC_PER_MSEC && d <= 501 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(ratelimit_until_at(rl, 5, t), d);
	/* Two more reserved (tokens at -2): 0.7 s. */
	ratelimit_reserve_at(rl, t);
	ratelimit_reserve_at(rl, t);
	d = ratelimit_until_at(rl, 5, t);
	assert_true(d >= 700 * KTIME_NSEC_PER_MSEC && d <= 701 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(ratelimit_until_at(rl, 5, t + 700 * KTIME_NSEC_PER_MSEC), 0);
	/* More than the burst is never waited for past the burst. */
	assert_int_equal(ratelimit_until_at(rl, 50, t + 1200 * KTIME_NSEC_PER_MSEC), 0);
	ratelimit_free(rl);
	assert_int_equal(ratelimit_new(-1, 0, &rl), 0);
	assert_int_equal(ratelimit_until_at(rl, 5, t), 0); /* no limit */
	ratelimit_free(rl);
}

int tests_ratelimit(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_rate),
		cmocka_unit_test(long_run_rate),
		cmocka_unit_test(until_quiet),
		cmocka_unit_test(unlimited_and_invalid),
	};
	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
