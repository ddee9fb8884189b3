/*
 * drain: the victim order (already draining, then not warm, then least
 * loaded with unknown load last, then newest, then by name).
 */
#include "unit.h"

#include "drain.h"

#include <stdio.h>
#include <string.h>

static struct drain_candidate cand(const char *name, bool warm, bool draining, double inflight,
				   int64_t created)
{
	struct drain_candidate c;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.warm = warm;
	c.draining = draining;
	c.inflight = inflight;
	c.created = created;
	return c;
}

static void order_is(struct drain_candidate *c, size_t n, const char *const *want)
{
	drain_order(c, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(c[i].name, want[i]);
}

static void draining_then_cold_then_load(void **state)
{
	struct drain_candidate c[] = {
		cand("busy", true, false, 9, 100),
		cand("idle", true, false, 0, 100),
		cand("cold", false, false, -1, 50),
		cand("leaving", true, true, 3, 10),
		cand("unknown", true, false, -1, 200),
	};
	static const char *const want[] = { "leaving", "cold", "idle", "busy", "unknown" };
	(void)state;
	order_is(c, 5, want);
}

static void newest_then_name_break_ties(void **state)
{
	struct drain_candidate c[] = {
		cand("b", true, false, 1, 100),
		cand("old", true, false, 1, 50),
		cand("a", true, false, 1, 100),
		cand("new", true, false, 1, 300),
	};
	static const char *const want[] = { "new", "a", "b", "old" };
	(void)state;
	order_is(c, 4, want);
}

/* Nothing to sort is not an error. */
static void empty_and_one(void **state)
{
	struct drain_candidate one = cand("x", true, false, 0, 1);
	(void)state;
	drain_order(NULL, 0);
	drain_order(&one, 1);
	assert_string_equal(one.name, "x");
}

int tests_drain(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(draining_then_cold_then_load),
		cmocka_unit_test(newest_then_name_break_ties),
		cmocka_unit_test(empty_and_one),
	};
	return cmocka_run_group_tests_name("drain", tests, NULL, NULL);
}
