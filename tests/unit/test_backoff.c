/* backoff: doubling, cap, reset and the jitter's range. */
#include "unit.h"

#include "backoff.h"
#include "ktime.h"

static void doubles_to_cap(void **state)
{
	struct backoff b;
	(void)state;
	backoff_init(&b, 5 * KTIME_NSEC_PER_MSEC, 1000 * KTIME_NSEC_PER_SEC, 0, 1);
	assert_int_equal(backoff_next(&b), 5 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(backoff_next(&b), 10 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(backoff_next(&b), 20 * KTIME_NSEC_PER_MSEC);
	for (int i = 0; i < 100; i++)
		backoff_next(&b);
	assert_int_equal(backoff_next(&b), 1000 * KTIME_NSEC_PER_SEC);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b), 5 * KTIME_NSEC_PER_MSEC);
}

/* The informer's shape: 0.8 s doubling to 30 s. */
static void cap_not_power_of_two(void **state)
{
	struct backoff b;
	uint64_t expect[] = { 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000 };
	(void)state;
	backoff_init(&b, 800 * KTIME_NSEC_PER_MSEC, 30 * KTIME_NSEC_PER_SEC, 0, 1);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_int_equal(backoff_next(&b), expect[i] * KTIME_NSEC_PER_MSEC);
}

static void jitter_within_range(void **state)
{
	struct backoff b;
	uint64_t lo = UINT64_MAX, hi = 0;
	(void)state;
	for (uint64_t seed = 1; seed < 2000; seed++) {
		backoff_init(&b, 100 * KTIME_NSEC_PER_MSEC, KTIME_NSEC_PER_SEC, 1.0, seed);
		uint64_t d = backoff_next(&b);
		assert_true(d >= 100 * KTIME_NSEC_PER_MSEC);
		assert_true(d < 200 * KTIME_NSEC_PER_MSEC);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	/* Jitter actually spreads the delays. */
	assert_true(hi - lo > 50 * KTIME_NSEC_PER_MSEC);
}

static void rand_in_unit_interval(void **state)
{
	uint64_t s = 42;
	(void)state;
	for (int i = 0; i < 10000; i++) {
		double v = backoff_rand01(&s);
		assert_true(v >= 0.0 && v < 1.0);
	}
}

int tests_backoff(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(doubles_to_cap),
		cmocka_unit_test(cap_not_power_of_two),
		cmocka_unit_test(jitter_within_range),
		cmocka_unit_test(rand_in_unit_interval),
	};
	return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
