/*
 * cron: the five-field cron expressions of spec.scaling.schedules, and
 * their time zone. Pure: no clock, no tz database; the caller passes the
 * time.
 *
 * Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
 * JAN-DEC), day of week (0-7 or SUN-SAT, 0 and 7 are Sunday). Each is *,
 * a number, a range a-b, a range or * followed by /step, or a comma list;
 * the macros @yearly, @annually, @monthly, @weekly, @daily, @midnight and
 * @hourly stand for their usual expansions. As in Vixie cron (and the
 * robfig/cron library KEDA's cron scaler uses), when both day of month
 * and day of week are restricted a day matching either one matches.
 *
 * Time zones are fixed offsets from UTC: "UTC", "Etc/UTC", "UTC+05:30",
 * "UTC-08:00" (also "+05:30"). kinfer's image carries no tz database, so
 * names with daylight saving time (Europe/Berlin) are refused by name
 * rather than silently read as UTC.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRON_MAX_LEN 128

struct cron_expr {
	uint64_t minutes; /* bit m: minute m */
	uint32_t hours;   /* bit h */
	uint32_t days;    /* bit d: day of month d (1..31) */
	uint16_t months;  /* bit m: month m (1..12) */
	uint8_t weekdays; /* bit w: day of week w (0 = Sunday .. 6) */
	bool any_day;     /* the day-of-month field was "*" */
	bool any_weekday; /* the day-of-week field was "*" */
};

/* 0, or -EINVAL with why naming the field that is wrong. */
int cron_parse(const char *expr, struct cron_expr *ret_expr, char *why, size_t why_len);

/* Does the minute that contains local_seconds (seconds since the epoch,
 * shifted to the local time) match? */
bool cron_matches(const struct cron_expr *c, int64_t local_seconds);

/* The start of the latest minute at or before t that matches, if it is
 * at or after lo; else INT64_MIN. Days, hours and minutes that cannot
 * match are skipped whole, so a week back costs a few dozen steps. */
int64_t cron_prev(const struct cron_expr *c, int64_t t, int64_t lo);

/* "UTC+02:00" -> 7200. -EINVAL for anything else, with why. */
int cron_tz_parse(const char *tz, int32_t *ret_offset_seconds, char *why, size_t why_len);
