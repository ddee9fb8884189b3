/*
 * Flag parsing: defaults, then the environment, then the command line, all
 * through one setter so every source gets the same checks and messages.
 */
#include "flags.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int flags_parse_duration_ms(const char *s, long *ret_ms)
{
	char *end;
	double v;
	double mult = 1000;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else
		return -EINVAL;
	if (v * mult > (double)LONG_MAX / 2)
		return -EINVAL;
	*ret_ms = (long)(v * mult);
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes"))
		*ret = true;
	else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no"))
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

static int set_value(const struct flag *f, void *cfg, const char *v, const char *source, char *err,
		     size_t errlen)
{
	char *p = (char *)cfg + f->offset, *end;
	const char *want = "";

	switch (f->kind) {
	case FLAG_STRING:
		*(const char **)p = v;
		return 0;
	case FLAG_INT: {
		errno = 0;
		long x = strtol(v, &end, 10);
		if (!errno && end != v && !*end && x >= 0 && x <= INT_MAX) {
			*(int *)p = (int)x;
			return 0;
		}
		want = "a whole number >= 0";
		break;
	}
	case FLAG_DOUBLE: {
		errno = 0;
		double x = strtod(v, &end);
		if (!errno && end != v && !*end && x >= 0 && isfinite(x)) {
			*(double *)p = x;
			return 0;
		}
		want = "a number >= 0";
		break;
	}
	case FLAG_BOOL:
		if (parse_bool(v, (bool *)p) == 0)
			return 0;
		want = "true or false";
		break;
	case FLAG_DURATION_MS:
		if (flags_parse_duration_ms(v, (long *)p) == 0)
			return 0;
		want = "a duration such as 500ms, 30s or 2m";
		break;
	}
	snprintf(err, errlen, "%s: invalid value \"%s\": want %s", source, v, want);
	return -EINVAL;
}

static const struct flag *find(const struct flag *t, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0)
			return &t[i];
	return NULL;
}

int flags_parse(const struct flag *table, size_t n, void *cfg, int argc, char **argv, int *argi,
		bool *ret_help, char *err, size_t errlen)
{
	char source[128];
	int r;

	*ret_help = false;
	for (size_t i = 0; i < n; i++) {
		if (!table[i].def)
			continue;
		snprintf(source, sizeof(source), "default of --%s", table[i].name);
		r = set_value(&table[i], cfg, table[i].def, source, err, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		const char *v = table[i].env ? getenv(table[i].env) : NULL;
		if (!v || !*v)
			continue;
		snprintf(source, sizeof(source), "environment variable %s", table[i].env);
		r = set_value(&table[i], cfg, v, source, err, errlen);
		if (r < 0)
			return r;
	}
	while (*argi < argc) {
		const char *a = argv[*argi];
		if (strcmp(a, "--") == 0) {
			(*argi)++;
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			*ret_help = true;
			(*argi)++;
			continue;
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
			break;
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct flag *f = find(table, n, name, len);
		const char *v;
		if (!f) {
			snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)len, name);
			return -EINVAL;
		}
		(*argi)++;
		if (eq) {
			v = eq + 1;
		} else if (f->kind == FLAG_BOOL) {
			v = "true";
		} else if (*argi < argc) {
			v = argv[(*argi)++];
		} else {
			snprintf(err, errlen, "flag --%s needs a value", f->name);
			return -EINVAL;
		}
		snprintf(source, sizeof(source), "--%s", f->name);
		r = set_value(f, cfg, v, source, err, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

void flags_usage(FILE *out, const struct flag *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct flag *f = &table[i];
		fprintf(out, "  --%s%s\n      %s", f->name, f->kind == FLAG_BOOL ? "" : " VALUE",
			f->help);
		if (f->def && *f->def)
			fprintf(out, " (default %s)", f->def);
		if (f->env)
			fprintf(out, " [env %s]", f->env);
		fputc('\n', out);
	}
}
