/* log: logfmt and JSON lines, quoting, numbers, and truncation. */
#include "unit.h"

#include "log.h"

#include <json-c/json.h>
#include <string.h>

static size_t fmt(char *buf, size_t len, enum log_format f, const char *msg, const char *tmpl, ...)
{
	va_list ap;
	va_start(ap, tmpl);
	size_t n = log_format_line(buf, len, f, LOG_LEVEL_INFO, msg, tmpl, ap);
	va_end(ap);
	return n;
}

static void logfmt_quotes_when_needed(void **state)
{
	char buf[512];
	(void)state;
	fmt(buf, sizeof(buf), LOG_FORMAT_LOGFMT, "watch started", "kind=%s rv=%s n=%d dur=%dms",
	    "Pod", "a b\"c", 42, 7);
	assert_string_equal(buf, "level=info msg=\"watch started\" kind=Pod "
				 "rv=\"a b\\\"c\" n=42 dur=7ms");
}

static void json_is_valid(void **state)
{
	char buf[512];
	json_object *o, *v;
	(void)state;
	fmt(buf, sizeof(buf), LOG_FORMAT_JSON, "x \"y\"", "kind=%s n=%d f=%.2f path=%s/%s dur=%dms",
	    "Pod", -3, 1.5, "ns", "n\n", 9);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "msg", &v));
	assert_string_equal(json_object_get_string(v), "x \"y\"");
	assert_true(json_object_object_get_ex(o, "n", &v));
	assert_int_equal(json_object_get_int(v), -3);
	assert_true(json_object_object_get_ex(o, "f", &v));
	assert_true(json_object_is_type(v, json_type_double));
	assert_true(json_object_object_get_ex(o, "path", &v));
	assert_string_equal(json_object_get_string(v), "ns/n\n");
	assert_true(json_object_object_get_ex(o, "dur", &v));
	assert_string_equal(json_object_get_string(v), "9ms");
	json_object_put(o);
}

static void truncates_long_lines(void **state)
{
	char big[3000], buf[256];
	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	size_t n = fmt(buf, sizeof(buf), LOG_FORMAT_LOGFMT, "m", "v=%s", big);
	assert_true(n < sizeof(buf));
	assert_int_equal(strlen(buf), n);
	assert_memory_equal(buf + n - 3, "...", 3);
}

static void levels_parse(void **state)
{
	enum log_level l;
	enum log_format f;
	(void)state;
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_true(log_level_parse("verbose", &l) < 0);
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_true(log_format_parse("xml", &f) < 0);
}

int tests_log(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(logfmt_quotes_when_needed),
		cmocka_unit_test(json_is_valid),
		cmocka_unit_test(truncates_long_lines),
		cmocka_unit_test(levels_parse),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
