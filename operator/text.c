/*
 * Bounded text: snprintf underneath, so truncation is safe and defined.
 */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>

void text_copy(char *dst, size_t len, const char *src)
{
	if (dst && len)
		snprintf(dst, len, "%s", src ? src : "");
}

int text_errf(char *err, size_t len, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return code;
}
