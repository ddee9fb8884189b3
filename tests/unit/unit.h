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

/* Read a file under tests/data into a NUL-terminated buffer (test helper). */
char *test_read_data(const char *name, size_t *ret_len);
