/* Shared by the unit groups: cmocka and the group entry points. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define GROUP(name) int tests_##name(void);
#include "test-list.h"
#undef GROUP

/* Group setup for tests of the RCU caches: this thread registered with
 * RCU and a fresh intern table in test_interns; the teardown waits for
 * every retired object before freeing it. */
struct intern;
extern struct intern *test_interns;
int test_rcu_setup(void **state);
int test_rcu_teardown(void **state);

/* Read a file under tests/data into a NUL-terminated buffer (test helper). */
char *test_read_data(const char *name, size_t *ret_len);

/*
 * A recorded `kubectl get KIND -o json` list under tests/data, parsed
 * (*ret_list), its N items (checked) projected and published into a new
 * cache of kind (*ret, to cache_free); and one item by metadata.name
 * (fails the test when it is missing). Inside test_rcu_setup.
 */
struct cache;
struct cache_kind;
struct json_object;
void test_cache_of_list(const struct cache_kind *kind, const char *file, size_t n,
			struct cache **ret, struct json_object **ret_list);
struct json_object *test_list_item(struct json_object *list, const char *name);
