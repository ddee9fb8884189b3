/*
 * Levelled, structured logging: one event per line, logfmt or JSON.
 *
 *   log_info("watch started", "kind=%s rv=%s", kind, rv);
 *
 * The second argument is a template of key=value pairs. Values formatted
 * with %s are quoted and escaped as the output format needs, so a message or
 * name with spaces or quotes never breaks a line; numbers use the usual
 * conversions (%d %u %ld %lu %lld %llu %zu %zd %f %g, with precision).
 * Secrets (tokens, keys) are never passed here: callers log names, not
 * values.
 */
#pragma once

#include <stdarg.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

enum log_format {
	LOG_FORMAT_LOGFMT,
	LOG_FORMAT_JSON,
};

int log_level_parse(const char *s, enum log_level *ret_level);
int log_format_parse(const char *s, enum log_format *ret_format);
void log_setup(enum log_level level, enum log_format format, FILE *out);

/* The --log-level and --log-format flags of command PROG: parse both and set
 * up stderr logging, or print which flag has which bad value (-EINVAL). */
int log_setup_flags(const char *prog, const char *level, const char *format);
int log_enabled(enum log_level level);

void log_event(enum log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_eventv(enum log_level level, const char *msg, const char *fmt, va_list ap);

/*
 * Format one line into buf without the timestamp (tests use this).
 * Returns the length written, truncating with "..." past len.
 */
size_t log_format_line(char *buf, size_t len, enum log_format format, enum log_level level,
		       const char *msg, const char *fmt, va_list ap);

#define log_debug(msg, ...) log_event(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_event(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_event(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_event(LOG_LEVEL_ERROR, msg, __VA_ARGS__)
