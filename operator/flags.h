/*
 * Command-line flags as rows of a const table. Each flag can also come
 * from an environment variable; the command line wins over the
 * environment, which wins over the default.
 *
 * Values are stored into a caller's struct at the row's offset: strings as
 * const char * pointing into argv, the environment or the default (no
 * allocation), numbers parsed and range-checked.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum flag_kind {
	FLAG_STRING,      /* const char * */
	FLAG_INT,         /* int, must be >= 0 */
	FLAG_DOUBLE,      /* double, must be >= 0 */
	FLAG_BOOL,        /* bool: --x, --x=true|false, env 1|0|true|false */
	FLAG_DURATION_MS, /* long ms: 500ms, 30s, 2m, 1h; a bare number = s */
};

struct flag {
	const char *name; /* without the leading -- */
	const char *env;  /* NULL = none */
	enum flag_kind kind;
	size_t offset;
	const char *def; /* NULL = unset */
	const char *help;
};

/*
 * Parse argv[*argi...] until the first non-flag argument or "--", leaving
 * *argi at it. --help sets *ret_help. Returns 0, or -EINVAL with a message
 * naming the flag (or environment variable) and the value.
 */
int flags_parse(const struct flag *table, size_t n, void *cfg, int argc, char **argv, int *argi,
		bool *ret_help, char *err, size_t errlen);

void flags_usage(FILE *out, const struct flag *table, size_t n);

int flags_parse_duration_ms(const char *s, long *ret_ms);
