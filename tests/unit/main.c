/*
 * The unit test runner: `kinfer_unit GROUP` runs one group, no argument
 * runs all. ctest registers one entry per group from test-list.h.
 */
#include "unit.h"

#include "cache.h"
#include "intern.h"
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	int (*run)(void);
} groups[] = {
#define GROUP(name) { #name, tests_##name },
#include "test-list.h"
#undef GROUP
};

struct intern *test_interns;

int test_rcu_setup(void **state)
{
	(void)state;
	rcu_register_thread();
	return intern_new(&test_interns);
}

int test_rcu_teardown(void **state)
{
	(void)state;
	cache_barrier();
	intern_free(test_interns);
	test_interns = NULL;
	rcu_unregister_thread();
	return 0;
}

char *test_read_data(const char *name, size_t *ret_len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", KINFER_TEST_DATA, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (ret_len)
			*ret_len = (size_t)n;
	}
	return buf;
}

void test_cache_of_list(const struct cache_kind *kind, const char *file, size_t n,
			struct cache **ret, json_object **ret_list)
{
	char *s = test_read_data(file, NULL);
	assert_non_null(s);
	json_object *list = json_tokener_parse(s);
	free(s);
	assert_non_null(list);
	json_object *items = cache_json_get(list, "items");
	assert_non_null(items);
	assert_int_equal(json_object_array_length(items), n);
	assert_int_equal(cache_new(kind, test_interns, ret), 0);
	for (size_t i = 0; i < n; i++) {
		struct cache_obj *obj, *old;
		assert_int_equal(cache_project(*ret, json_object_array_get_idx(items, i), &obj), 0);
		cache_publish(*ret, obj, &old);
		assert_null(old);
	}
	*ret_list = list;
}

json_object *test_list_item(json_object *list, const char *name)
{
	json_object *items = cache_json_get(list, "items");
	for (size_t i = 0; items && i < json_object_array_length(items); i++) {
		json_object *o = json_object_array_get_idx(items, i);
		const char *n = cache_json_str(o, "metadata.name");
		if (n && strcmp(n, name) == 0)
			return o;
	}
	fail_msg("no item %s in the recorded list", name);
	return NULL;
}

int main(int argc, char **argv)
{
	int failed = 0, ran = 0;

	keys_register(); /* kinfer.io's keys, as main registers them */
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (argc > 1 && strcmp(argv[1], groups[i].name) != 0)
			continue;
		failed += groups[i].run();
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "no test group named %s\n", argc > 1 ? argv[1] : "");
		return 2;
	}
	return failed ? 1 : 0;
}
