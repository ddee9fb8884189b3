/* ktime: the RFC 3339 reader (metav1.Time and MicroTime), the MicroTime
 * writer, unit conversions and the clocks. */
#include "unit.h"

#include "ktime.h"

#include <string.h>

static void parses_api_server_forms(void **state)
{
	(void)state;
	assert_int_equal(ktime_parse_rfc3339("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(ktime_parse_rfc3339("2024-05-01T10:00:00Z"), 1714557600);
	/* A fraction is allowed; seconds are what a Time keeps. */
	assert_int_equal(ktime_parse_rfc3339("2024-05-01T10:00:00.999999Z"), 1714557600);
	/* A numeric offset means the same instant in UTC. */
	assert_int_equal(ktime_parse_rfc3339("2024-05-01T12:30:00+02:30"), 1714557600);
	assert_int_equal(ktime_parse_rfc3339("2024-05-01T07:00:00-03:00"), 1714557600);
	/* MicroTime keeps six digits; fewer are scaled, more are cut. */
	assert_int_equal(ktime_parse_rfc3339_us("2024-05-01T10:00:00.123456Z"),
			 1714557600LL * 1000000 + 123456);
	assert_int_equal(ktime_parse_rfc3339_us("2024-05-01T10:00:00.5Z"),
			 1714557600LL * 1000000 + 500000);
	assert_int_equal(ktime_parse_rfc3339_us("2024-05-01T10:00:00.1234567Z"),
			 1714557600LL * 1000000 + 123456);
}

static void refuses_the_rest(void **state)
{
	static const char *const bad[] = {
		"",
		"2024",
		"2024-05-01",
		"2024-05-01 10:00:00Z",
		"2024-05-01T10:00:00",
		"2024-05-01T10:00:00.Z",
		"2024-05-01T10:00:00Zjunk",
		"2024-05-01T10:00:00+0200",
		"2024-05-01T10:00:00+02",
		"yesterday",
	};
	(void)state;
	assert_int_equal(ktime_parse_rfc3339(NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ktime_parse_rfc3339_us(bad[i]), 0);
}

static void micro_round_trip(void **state)
{
	char buf[KTIME_MICRO_LEN];
	(void)state;
	ktime_format_micro(1714557600LL * 1000000 + 42, buf, sizeof(buf));
	assert_string_equal(buf, "2024-05-01T10:00:00.000042Z");
	assert_int_equal(ktime_parse_rfc3339_us(buf), 1714557600LL * 1000000 + 42);
	ktime_format(1714557600LL * 1000000 + 123999, 3, buf, sizeof(buf));
	assert_string_equal(buf, "2024-05-01T10:00:00.123Z");
	ktime_format(1714557600LL * 1000000 + 123999, 0, buf, sizeof(buf));
	assert_string_equal(buf, "2024-05-01T10:00:00Z");
	int64_t now = ktime_wall_us();
	ktime_format_micro(now, buf, sizeof(buf));
	assert_int_equal(ktime_parse_rfc3339_us(buf), now);
}

static void conversions(void **state)
{
	(void)state;
	struct timespec ts = ktime_timespec(3 * KTIME_NSEC_PER_SEC + 5 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(ts.tv_sec, 3);
	assert_int_equal(ts.tv_nsec, 5000000);
	assert_true(ktime_ns_to_s(1500 * KTIME_NSEC_PER_MSEC) == 1.5);
	uint64_t a = ktime_mono_ns(), b = ktime_mono_ns();
	assert_true(b >= a);
	assert_true(ktime_mono_ms() >= a / KTIME_NSEC_PER_MSEC);
	/* The wall clock in ms and us agree to within a second. */
	int64_t ms = ktime_wall_ms(), us = ktime_wall_us();
	assert_true(us / 1000 - ms < 1000 && ms - us / 1000 < 1000);
	struct timespec now, d = ktime_deadline(CLOCK_MONOTONIC, KTIME_NSEC_PER_SEC);
	clock_gettime(CLOCK_MONOTONIC, &now);
	assert_true(d.tv_sec >= now.tv_sec && d.tv_sec <= now.tv_sec + 1);
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < (long)KTIME_NSEC_PER_SEC);
}

int tests_ktime(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_api_server_forms),
		cmocka_unit_test(refuses_the_rest),
		cmocka_unit_test(micro_round_trip),
		cmocka_unit_test(conversions),
	};
	return cmocka_run_group_tests_name("ktime", tests, NULL, NULL);
}
