/*
 * cron: parse five-field expressions into bit sets, and match a minute
 * against them with calendar arithmetic of our own (days from the epoch
 * to a civil date, as in Howard Hinnant's date algorithms), so matching
 * needs no gmtime and no locale.
 */
#include "cron.h"

#include <ctype.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] is the value lo + i */
};

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
					   "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const day_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL },          { "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },    { "month", 1, 12, month_names },
	{ "day of week", 0, 7, day_names },
};

static const struct {
	const char *name, *expansion;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* A number or a name of f at *s; advances *s. */
static bool value(const struct field *f, const char **s, int *ret)
{
	const char *p = *s;
	long v = 0;

	if (isdigit((unsigned char)*p)) {
		while (isdigit((unsigned char)*p) && v <= 1000)
			v = v * 10 + (*p++ - '0');
		if (v < f->lo || v > f->hi)
			return false;
		*ret = (int)v;
		*s = p;
		return true;
	}
	for (int i = 0; f->names && f->names[i]; i++) {
		if (strncasecmp(p, f->names[i], 3) == 0 && !isalpha((unsigned char)p[3])) {
			*ret = f->lo + i;
			*s = p + 3;
			return true;
		}
	}
	return false;
}

/* One comma-separated part: *, n, a-b, with an optional /step. */
static bool part(const struct field *f, const char *p, const char *end, uint64_t *bits)
{
	int a = f->lo, b = f->hi, step = 1;

	if (*p == '*') {
		p++;
	} else {
		if (!value(f, &p, &a))
			return false;
		b = a;
		if (*p == '-') {
			p++;
			if (!value(f, &p, &b) || b < a)
				return false;
		}
	}
	if (*p == '/') {
		long v = 0;
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p) && v <= 1000)
			v = v * 10 + (*p++ - '0');
		if (v < 1 || v > f->hi)
			return false;
		step = (int)v;
		if (a == b && b != f->hi)
			b = f->hi; /* "5/15" means 5-max/15, as in robfig/cron */
	}
	if (p != end)
		return false;
	for (int v = a; v <= b; v += step)
		*bits |= 1ULL << v;
	return true;
}

static bool parse_field(const struct field *f, const char *s, size_t n, uint64_t *bits, bool *star)
{
	char buf[CRON_MAX_LEN + 1];
	char *p, *comma;

	if (n == 0 || n > CRON_MAX_LEN)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*star = strcmp(buf, "*") == 0;
	*bits = 0;
	for (p = buf;; p = comma + 1) {
		comma = strchr(p, ',');
		if (!part(f, p, comma ? comma : p + strlen(p), bits))
			return false;
		if (!comma)
			break;
	}
	return true;
}

int cron_parse(const char *expr, struct cron_expr *ret_expr, char *why, size_t why_len)
{
	struct cron_expr c;
	uint64_t bits[5];
	bool star[5];
	const char *p;
	int k = 0;

	if (!expr || strlen(expr) > CRON_MAX_LEN) {
		snprintf(why, why_len,
			 "a cron expression of at most %d "
			 "characters",
			 CRON_MAX_LEN);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
		if (strcmp(expr, macros[i].name) == 0)
			expr = macros[i].expansion;
	for (p = expr; k < 5; k++) {
		const char *start;
		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (p == start)
			break;
		if (!parse_field(&fields[k], start, (size_t)(p - start), &bits[k], &star[k])) {
			snprintf(why, why_len,
				 "the %s field \"%.*s\" is not "
				 "valid (%d-%d, *, a-b, */n, lists)",
				 fields[k].name, (int)(p - start > 32 ? 32 : p - start), start,
				 fields[k].lo, fields[k].hi);
			return -EINVAL;
		}
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (k != 5 || *p) {
		snprintf(why, why_len,
			 "want five fields (minute hour "
			 "day-of-month month day-of-week) or a macro such as "
			 "@daily");
		return -EINVAL;
	}
	c.minutes = bits[0];
	c.hours = (uint32_t)bits[1];
	c.days = (uint32_t)bits[2];
	c.months = (uint16_t)bits[3];
	c.weekdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	c.any_day = star[2];
	c.any_weekday = star[4];
	*ret_expr = c;
	return 0;
}

/* Days since 1970-01-01 -> year, month (1..12), day (1..31). */
static void civil(int64_t z, int *ret_m, int *ret_d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*ret_d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*ret_m = (int)(mp < 10 ? mp + 3 : mp - 9);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static bool day_matches(const struct cron_expr *c, int64_t days)
{
	int wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01: Thursday */
	int month, mday;
	bool dom, dow;

	civil(days, &month, &mday);
	if (!(c->months >> month & 1))
		return false;
	dom = c->days >> mday & 1;
	dow = c->weekdays >> wday & 1;
	if (c->any_day || c->any_weekday)
		return dom && dow;
	return dom || dow;
}

/* The highest set bit of bits at or below pos, or -1. */
static int highest_at_or_below(uint64_t bits, int pos)
{
	uint64_t m = pos >= 63 ? bits : bits & ((2ULL << pos) - 1);

	return m ? 63 - __builtin_clzll(m) : -1;
}

int64_t cron_prev(const struct cron_expr *c, int64_t t, int64_t lo)
{
	int64_t days = floor_div(t, 86400), sec = t - days * 86400;
	int hour = (int)(sec / 3600), minute = (int)(sec / 60 % 60);

	if (!c)
		return INT64_MIN;
	/* At most 8 days and change are ever asked for; bound it anyway. */
	for (int guard = 0; guard < 4000 && days * 86400 + 86399 >= lo; guard++) {
		if (day_matches(c, days)) {
			int h = highest_at_or_below(c->hours, hour);
			while (h >= 0) {
				int m = highest_at_or_below(c->minutes, h == hour ? minute : 59);
				if (m >= 0) {
					int64_t at = days * 86400 + h * 3600 + m * 60;
					return at >= lo ? at : INT64_MIN;
				}
				h = h > 0 ? highest_at_or_below(c->hours, h - 1) : -1;
			}
		}
		days--;
		hour = 23;
		minute = 59;
	}
	return INT64_MIN;
}

bool cron_matches(const struct cron_expr *c, int64_t t)
{
	int64_t days = floor_div(t, 86400), sec = t - days * 86400;

	return c && (c->minutes >> (sec / 60 % 60) & 1) && (c->hours >> (sec / 3600) & 1) &&
	       day_matches(c, days);
}

static bool two_digits(const char *p, int max, int *ret)
{
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return false;
	*ret = (p[0] - '0') * 10 + (p[1] - '0');
	return *ret <= max;
}

int cron_tz_parse(const char *tz, int32_t *ret_offset_seconds, char *why, size_t why_len)
{
	const char *p = tz;
	int sign, h, m;

	if (tz && (strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0)) {
		*ret_offset_seconds = 0;
		return 0;
	}
	if (tz && strncmp(tz, "UTC", 3) == 0)
		p = tz + 3;
	if (!tz || (*p != '+' && *p != '-') || !two_digits(p + 1, 14, &h) || p[3] != ':' ||
	    !two_digits(p + 4, 59, &m) || p[6] || h * 60 + m > 14 * 60) {
		snprintf(why, why_len,
			 "\"%.40s\" is not a time zone kinfer "
			 "knows: give UTC or a fixed offset such as "
			 "UTC+02:00 or UTC-05:30 (no tz database: names with "
			 "daylight saving time are not supported)",
			 tz ? tz : "");
		return -EINVAL;
	}
	sign = *p == '-' ? -1 : 1;
	*ret_offset_seconds = sign * (h * 3600 + m * 60);
	return 0;
}
