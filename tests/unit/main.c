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
