/*
 * Time: clock reads, unit conversions and the RFC 3339 reader.
 */
#include "ktime.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

uint64_t ktime_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * KTIME_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t ktime_mono_ms(void)
{
	return ktime_mono_ns() / KTIME_NSEC_PER_MSEC;
}

int64_t ktime_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * KTIME_MSEC_PER_SEC + ts.tv_nsec / (long)KTIME_NSEC_PER_MSEC;
}

double ktime_ns_to_s(uint64_t ns)
{
	return (double)ns / (double)KTIME_NSEC_PER_SEC;
}

struct timespec ktime_timespec(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / KTIME_NSEC_PER_SEC), (long)(ns % KTIME_NSEC_PER_SEC) };
	return ts;
}

struct timespec ktime_deadline(clockid_t id, uint64_t ns)
{
	struct timespec now;
	clock_gettime(id, &now);
	return ktime_timespec((uint64_t)now.tv_sec * KTIME_NSEC_PER_SEC + (uint64_t)now.tv_nsec + ns);
}

int64_t ktime_parse_rfc3339_us(const char *s)
{
	struct tm tm = { 0 };
	const char *p;
	int64_t frac = 0, off = 0;
	int digits = 0;

	if (!s)
		return 0;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return 0;
	if (*p == '.') { /* a fraction: microseconds are kept */
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 6)
				frac = frac * 10 + (*p - '0');
		if (!digits)
			return 0;
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
		   isdigit((unsigned char)p[5])) {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		      ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '+')
			off = -off;
		p += 6;
	} else {
		return 0;
	}
	if (*p)
		return 0;
	return ((int64_t)timegm(&tm) + off) * (int64_t)KTIME_USEC_PER_SEC + frac;
}

int64_t ktime_parse_rfc3339(const char *s)
{
	return ktime_parse_rfc3339_us(s) / (int64_t)KTIME_USEC_PER_SEC;
}

int64_t ktime_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * (int64_t)KTIME_USEC_PER_SEC +
	       ts.tv_nsec / (long)KTIME_NSEC_PER_USEC;
}

void ktime_format(int64_t us, unsigned digits, char *buf, size_t len)
{
	time_t s = (time_t)(us / (int64_t)KTIME_USEC_PER_SEC);
	long frac = (long)(us % (int64_t)KTIME_USEC_PER_SEC);
	struct tm tm;
	size_t n;

	if (digits > 6)
		digits = 6;
	for (unsigned d = digits; d < 6; d++)
		frac /= 10;
	gmtime_r(&s, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (digits)
		snprintf(buf + n, len - n, ".%0*ldZ", (int)digits, frac);
	else
		snprintf(buf + n, len - n, "Z");
}

void ktime_format_micro(int64_t us, char *buf, size_t len)
{
	ktime_format(us, 6, buf, len);
}
