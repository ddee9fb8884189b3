/*
 * Time: the unit constants, the monotonic clock every timeout and backoff
 * is measured on, and the one parser of Kubernetes timestamps (metav1.Time,
 * RFC 3339). Durations inside kinfer are uint64_t nanoseconds on
 * CLOCK_MONOTONIC unless a name says otherwise (_ms, _s, wall).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KTIME_NSEC_PER_USEC 1000ULL
#define KTIME_NSEC_PER_MSEC 1000000ULL
#define KTIME_NSEC_PER_SEC 1000000000ULL
#define KTIME_MSEC_PER_SEC 1000LL
#define KTIME_USEC_PER_SEC 1000000ULL

/* Now on CLOCK_MONOTONIC, in ns. */
uint64_t ktime_mono_ns(void);
/* Now on CLOCK_MONOTONIC, in ms. */
uint64_t ktime_mono_ms(void);
/* Now on CLOCK_REALTIME, in ms since the epoch. */
int64_t ktime_wall_ms(void);
/* ns as seconds, for metrics and logs. */
double ktime_ns_to_s(uint64_t ns);
/* ns as a timespec (a relative one, or an absolute one on the same clock). */
struct timespec ktime_timespec(uint64_t ns);
/* A timespec for pthread_cond_timedwait: ns from now on clock id. */
struct timespec ktime_deadline(clockid_t id, uint64_t ns);
/* The sooner of two waits in ns where 0 means none: a requeue that
 * several reasons ask for. */
static inline uint64_t ktime_sooner(uint64_t a, uint64_t b)
{
	return !a || (b && b < a) ? b : a;
}
/*
 * Seconds since the epoch of an RFC 3339 timestamp as the API server writes
 * them ("2024-05-01T10:00:00Z", also with a fraction or a numeric offset);
 * 0 for NULL or anything else.
 */
int64_t ktime_parse_rfc3339(const char *s);
/* The same in microseconds (metav1.MicroTime keeps six digits). */
int64_t ktime_parse_rfc3339_us(const char *s);
/* Now on CLOCK_REALTIME, in us since the epoch. */
int64_t ktime_wall_us(void);
/* us since the epoch as metav1.MicroTime: 2006-01-02T15:04:05.000000Z
 * (len >= KTIME_MICRO_LEN). */
#define KTIME_MICRO_LEN 32
void ktime_format_micro(int64_t us, char *buf, size_t len);
/* The same with digits (0-6) of the fraction, cut not rounded ("...05.123Z"
 * with 3: the log's timestamps). */
void ktime_format(int64_t us, unsigned digits, char *buf, size_t len);
