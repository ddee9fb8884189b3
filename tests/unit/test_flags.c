/* flags: defaults < environment < command line, and clear errors. */
#include "unit.h"

#include "flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cfg {
	const char *name;
	int n;
	double q;
	bool on;
	long ms;
};

static const struct flag table[] = {
	{ "name", "T_NAME", FLAG_STRING, offsetof(struct cfg, name), "dflt", "a name" },
	{ "n", "T_N", FLAG_INT, offsetof(struct cfg, n), "3", "a count" },
	{ "q", NULL, FLAG_DOUBLE, offsetof(struct cfg, q), "1.5", "a rate" },
	{ "on", "T_ON", FLAG_BOOL, offsetof(struct cfg, on), "false", "a switch" },
	{ "timeout", NULL, FLAG_DURATION_MS, offsetof(struct cfg, ms), "30s", "a time" },
};

static int parse(struct cfg *c, int argc, char **argv, int *argi, char *err)
{
	bool help;
	*argi = 1;
	return flags_parse(table, 5, c, argc, argv, argi, &help, err, 256);
}

static void precedence(void **state)
{
	struct cfg c = { 0 };
	char err[256];
	int argi;
	char *argv[] = { "x", "--n=7", "--on", "--timeout", "250ms", "rest" };
	(void)state;
	setenv("T_NAME", "fromenv", 1);
	setenv("T_N", "5", 1);
	assert_int_equal(parse(&c, 6, argv, &argi, err), 0);
	assert_string_equal(c.name, "fromenv");
	assert_int_equal(c.n, 7);
	assert_true(c.on);
	assert_int_equal(c.ms, 250);
	assert_true(c.q == 1.5);
	assert_int_equal(argi, 5);
	unsetenv("T_NAME");
	unsetenv("T_N");
}

static void errors_name_the_source(void **state)
{
	struct cfg c = { 0 };
	char err[256];
	int argi;
	char *bad_n[] = { "x", "--n=-1" };
	char *unknown[] = { "x", "--nope" };
	char *missing[] = { "x", "--name" };
	(void)state;
	assert_int_equal(parse(&c, 2, bad_n, &argi, err), -EINVAL);
	assert_non_null(strstr(err, "--n: invalid value \"-1\""));
	assert_int_equal(parse(&c, 2, unknown, &argi, err), -EINVAL);
	assert_non_null(strstr(err, "unknown flag --nope"));
	assert_int_equal(parse(&c, 2, missing, &argi, err), -EINVAL);
	assert_non_null(strstr(err, "--name needs a value"));
	setenv("T_ON", "maybe", 1);
	char *none[] = { "x" };
	assert_int_equal(parse(&c, 1, none, &argi, err), -EINVAL);
	assert_non_null(strstr(err, "environment variable T_ON"));
	unsetenv("T_ON");
}

static void durations(void **state)
{
	long ms;
	(void)state;
	assert_int_equal(flags_parse_duration_ms("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(flags_parse_duration_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(flags_parse_duration_ms("10", &ms), 0);
	assert_int_equal(ms, 10000);
	assert_true(flags_parse_duration_ms("10d", &ms) < 0);
	assert_true(flags_parse_duration_ms("-1s", &ms) < 0);
	assert_true(flags_parse_duration_ms("", &ms) < 0);
}

int tests_flags(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(precedence),
		cmocka_unit_test(errors_name_the_source),
		cmocka_unit_test(durations),
	};
	return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}
