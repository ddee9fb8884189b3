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
