/*
 * Quantity parsing without floating point for the common cases: the
 * mantissa is read as an integer plus a count of fractional digits, then
 * scaled by the suffix in exact integer arithmetic (with overflow checks).
 */
#include "quantity.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct suffix {
	const char *s;
	int64_t mul; /* multiplier of one unit ... */
	int exp10;   /* ... times 10^exp10 */
};

static const struct suffix suffixes[] = {
	{ "Ki", 1024LL, 0 },
	{ "Mi", 1024LL * 1024, 0 },
	{ "Gi", 1024LL * 1024 * 1024, 0 },
	{ "Ti", 1024LL * 1024 * 1024 * 1024, 0 },
	{ "Pi", 1024LL * 1024 * 1024 * 1024 * 1024, 0 },
	{ "Ei", 1024LL * 1024 * 1024 * 1024 * 1024 * 1024, 0 },
	{ "n", 1, -9 },
	{ "u", 1, -6 },
	{ "m", 1, -3 },
	{ "", 1, 0 },
	{ "k", 1, 3 },
	{ "M", 1, 6 },
	{ "G", 1, 9 },
	{ "T", 1, 12 },
	{ "P", 1, 15 },
	{ "E", 1, 18 },
};

static bool mul_ok(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

int quantity_parse_milli(const char *s, int64_t *ret_milli)
{
	int64_t mant = 0, v;
	int frac = 0, exp10 = 0, sign = 1;
	bool digits = false, dot = false;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	for (; (*p >= '0' && *p <= '9') || (*p == '.' && !dot); p++) {
		if (*p == '.') {
			dot = true;
			continue;
		}
		digits = true;
		if (mant > (INT64_MAX - (*p - '0')) / 10)
			return -ERANGE;
		mant = mant * 10 + (*p - '0');
		if (dot)
			frac++;
	}
	if (!digits)
		return -EINVAL;
	const struct suffix *sf = NULL;
	if ((*p == 'e' || *p == 'E') && p[1] && strchr("+-0123456789", p[1])) {
		char *end;
		long e = strtol(p + 1, &end, 10);
		if (*end || e > 30 || e < -30)
			return *end ? -EINVAL : -ERANGE;
		exp10 = (int)e;
		sf = &suffixes[9];
	} else {
		for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
			if (strcmp(p, suffixes[i].s) == 0) {
				sf = &suffixes[i];
				break;
			}
		if (!sf)
			return -EINVAL;
		exp10 = sf->exp10;
	}
	/* value_milli = mant * mul * 10^(exp10 + 3 - frac) */
	if (!mul_ok(mant, sf->mul, &v))
		return -ERANGE;
	int e = exp10 + 3 - frac;
	for (; e > 0; e--)
		if (!mul_ok(v, 10, &v))
			return -ERANGE;
	for (; e < 0; e++) {
		int64_t q = v / 10;
		v = q + (v % 10 ? 1 : 0); /* round up, as Kubernetes does */
	}
	*ret_milli = sign * v;
	return 0;
}

int quantity_parse(const char *s, int64_t *ret)
{
	int64_t m;
	int r = quantity_parse_milli(s, &m);
	if (r < 0)
		return r;
	/* m / 1000 rounded up, without m + 999 (which overflows near
	 * INT64_MAX: "9223372036854775799m"). */
	*ret = m / 1000 + (m > 0 && m % 1000 ? 1 : 0);
	return 0;
}
