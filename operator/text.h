/*
 * Text into a caller's fixed buffer: the bounded copy and the error
 * formatter every module that reports "why" into (char *err, size_t len)
 * uses. Both truncate rather than overflow and accept a NULL or empty
 * buffer (then they write nothing).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* The same text, NULL equal only to NULL (interned strings compare by
 * pointer first). */
static inline bool text_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Copy src (NULL as "") into dst of len bytes, truncated, NUL-terminated. */
void text_copy(char *dst, size_t len, const char *src);
/* Format into err of len bytes and return code (so "return text_errf(err,
 * len, -EINVAL, ...)" reports and fails in one line). */
int text_errf(char *err, size_t len, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
