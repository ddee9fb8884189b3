/* yamljson: core-schema typing, documents and their lines, and limits. */
#include "unit.h"

#include "yamljson.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int one(const char *y, json_object **o, char *err)
{
	return yamljson_parse_one(y, strlen(y), o, err, 256);
}

static void scalars_are_typed(void **state)
{
	json_object *o, *v;
	char err[256];
	(void)state;
	assert_int_equal(one("a: 1\nb: 1.5\nc: true\nd: ~\ne: \"1\"\nf: hello world\n"
			     "g: 0x10\nh: -7\ni: 1e3\nj: 'true'\n",
			     &o, err),
			 0);
	assert_true(json_object_object_get_ex(o, "a", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int(v), 1);
	assert_true(json_object_object_get_ex(o, "b", &v));
	assert_true(json_object_is_type(v, json_type_double));
	assert_true(json_object_object_get_ex(o, "c", &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	assert_true(json_object_object_get_ex(o, "d", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "e", &v));
	assert_true(json_object_is_type(v, json_type_string));
	assert_true(json_object_object_get_ex(o, "f", &v));
	assert_string_equal(json_object_get_string(v), "hello world");
	assert_true(json_object_object_get_ex(o, "g", &v));
	assert_true(json_object_is_type(v, json_type_string));
	assert_true(json_object_object_get_ex(o, "h", &v));
	assert_int_equal(json_object_get_int(v), -7);
	assert_true(json_object_object_get_ex(o, "i", &v));
	assert_true(json_object_is_type(v, json_type_double));
	assert_true(json_object_object_get_ex(o, "j", &v));
	assert_true(json_object_is_type(v, json_type_string));
	json_object_put(o);
}

/* Exponents: a signed integer after the e; anything else is a string. */
static void exponents(void **state)
{
	static const char *const floats[] = { "1e3", "1.5E-3", "-2e+10", ".5e1" };
	static const char *const strings[] = { "1e", "1e+", "1e-x", "1e3.5", "e3", "1ee3" };
	json_object *o, *v;
	char y[64], err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		snprintf(y, sizeof(y), "v: %s\n", floats[i]);
		assert_int_equal(one(y, &o, err), 0);
		assert_true(json_object_object_get_ex(o, "v", &v));
		assert_true(json_object_is_type(v, json_type_double));
		json_object_put(o);
	}
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		snprintf(y, sizeof(y), "v: %s\n", strings[i]);
		assert_int_equal(one(y, &o, err), 0);
		assert_true(json_object_object_get_ex(o, "v", &v));
		assert_true(json_object_is_type(v, json_type_string));
		json_object_put(o);
	}
}

static void nested_and_aliases(void **state)
{
	json_object *o;
	char err[256];
	(void)state;
	assert_int_equal(one("base: &b {x: 1, y: [a, b]}\ncopy: *b\nlist:\n- 1\n- {k: v}\n", &o, err),
			 0);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"base\":{\"x\":1,\"y\":[\"a\",\"b\"]},"
			    "\"copy\":{\"x\":1,\"y\":[\"a\",\"b\"]},"
			    "\"list\":[1,{\"k\":\"v\"}]}");
	json_object_put(o);
}

struct docs {
	int n;
	int lines[8];
};

static int count_doc(json_object *doc, int line, void *ud)
{
	struct docs *d = ud;
	(void)doc;
	if (d->n < 8)
		d->lines[d->n] = line;
	d->n++;
	return 0;
}

static void documents_and_lines(void **state)
{
	struct docs d = { 0 };
	char err[256];
	const char *y = "a: 1\n---\nb: 2\nc: 3\n---\n# only a comment\n---\nd: 4\n";
	(void)state;
	assert_int_equal(yamljson_parse(y, strlen(y), count_doc, &d, err, sizeof(err)), 0);
	assert_int_equal(d.n, 4);
	assert_int_equal(d.lines[0], 1);
	assert_int_equal(d.lines[1], 2);
	assert_int_equal(d.lines[3], 7);
}

static void errors_name_the_line(void **state)
{
	json_object *o = NULL;
	char err[256];
	(void)state;
	assert_int_equal(one("a: 1\nb: [1, 2\nc: 3\n", &o, err), -EINVAL);
	assert_non_null(strstr(err, "line "));
	assert_int_equal(one("a: *nope\n", &o, err), -EINVAL);
	assert_non_null(strstr(err, "unknown alias"));
	assert_int_equal(one("? [a]\n: 1\n", &o, err), -EINVAL);
	assert_non_null(strstr(err, "keys must be scalars"));
}

static void depth_is_bounded(void **state)
{
	char y[1024];
	json_object *o = NULL;
	char err[256];
	size_t n = 0;
	(void)state;
	for (int i = 0; i < 200; i++)
		y[n++] = '[';
	for (int i = 0; i < 200; i++)
		y[n++] = ']';
	y[n] = '\0';
	assert_int_equal(one(y, &o, err), -EINVAL);
	assert_non_null(strstr(err, "nesting too deep"));
}

static void billion_laughs_is_refused(void **state)
{
	char *y = malloc(200000);
	size_t n = 0;
	json_object *o = NULL;
	char err[256];
	(void)state;
	n += (size_t)snprintf(y + n, 200000 - n, "a: &a [x, x]\n");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(y + n, 200000 - n, "k%d: [*a, *a]\n", i);
	assert_int_equal(one(y, &o, err), -EINVAL);
	assert_non_null(strstr(err, "too many aliases"));
	free(y);
}

int tests_yamljson(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scalars_are_typed),         cmocka_unit_test(exponents),
		cmocka_unit_test(nested_and_aliases),        cmocka_unit_test(documents_and_lines),
		cmocka_unit_test(errors_name_the_line),      cmocka_unit_test(depth_is_bounded),
		cmocka_unit_test(billion_laughs_is_refused),
	};
	return cmocka_run_group_tests_name("yamljson", tests, NULL, NULL);
}
