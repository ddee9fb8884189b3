/*
 * Structured logging. Each call builds its whole line in a stack buffer and
 * writes it with one fwrite under the stdio lock, so lines from several
 * threads never interleave. The template is parsed here rather than handed
 * to vfprintf so that string values can be quoted for the chosen format.
 */
#include "log.h"

#include "ktime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX 4096

static enum log_level log_min = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_LOGFMT;
static FILE *log_out;

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
};

int log_level_parse(const char *s, enum log_level *ret_level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

int log_format_parse(const char *s, enum log_format *ret_format)
{
	if (strcmp(s, "logfmt") == 0)
		*ret_format = LOG_FORMAT_LOGFMT;
	else if (strcmp(s, "json") == 0)
		*ret_format = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

void log_setup(enum log_level level, enum log_format format, FILE *out)
{
	log_min = level;
	log_fmt = format;
	log_out = out;
}

int log_enabled(enum log_level level)
{
	return level >= log_min;
}

/* A bounded writer: appends until full, then remembers it was cut. */
struct sink {
	char *buf;
	size_t len, pos;
	bool cut;
};

static void put(struct sink *s, const char *p, size_t n)
{
	if (s->pos + n >= s->len) {
		n = s->pos < s->len - 1 ? s->len - 1 - s->pos : 0;
		s->cut = true;
	}
	memcpy(s->buf + s->pos, p, n);
	s->pos += n;
	s->buf[s->pos] = '\0';
}

static void putc_(struct sink *s, char c)
{
	put(s, &c, 1);
}

static bool logfmt_needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (; *v; v++)
		if (*v <= ' ' || *v == '"' || *v == '=' || *v == '\\' || *v == 0x7f)
			return true;
	return false;
}

/* Quote a string value: JSON escapes serve both formats. */
static void put_quoted(struct sink *s, const char *v)
{
	putc_(s, '"');
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		char esc[8];
		switch (c) {
		case '"':
			put(s, "\\\"", 2);
			break;
		case '\\':
			put(s, "\\\\", 2);
			break;
		case '\n':
			put(s, "\\n", 2);
			break;
		case '\r':
			put(s, "\\r", 2);
			break;
		case '\t':
			put(s, "\\t", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				put(s, esc, strlen(esc));
			} else {
				putc_(s, (char)c);
			}
		}
	}
	putc_(s, '"');
}

static void put_string_value(struct sink *s, const char *v, enum log_format f)
{
	if (!v)
		v = "(null)";
	if (f == LOG_FORMAT_JSON || logfmt_needs_quotes(v))
		put_quoted(s, v);
	else
		put(s, v, strlen(v));
}

/*
 * Copy one printf conversion starting at *pp ('%' already consumed) into
 * spec and return the conversion character, or 0 if unsupported.
 */
static char scan_conversion(const char **pp, char *spec, size_t speclen)
{
	const char *p = *pp;
	size_t n = 0;
	spec[n++] = '%';
	while (*p && strchr("0123456789.-+ #lhzjt", *p) && n < speclen - 2)
		spec[n++] = *p++;
	if (!*p)
		return 0;
	spec[n++] = *p;
	spec[n] = '\0';
	*pp = p + 1;
	return *p;
}

static void put_number(struct sink *s, const char *spec, char conv, va_list *ap)
{
	char tmp[64];
	bool l = strstr(spec, "l") != NULL, ll = strstr(spec, "ll") != NULL;
	bool z = strchr(spec, 'z') != NULL;

	switch (conv) {
	case 'd':
	case 'i':
		if (ll)
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long long));
		else if (l)
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long));
		else if (z)
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, ssize_t));
		else
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, int));
		break;
	case 'u':
	case 'x':
	case 'X':
	case 'o':
		if (ll)
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, unsigned long long));
		else if (l)
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, unsigned long));
		else if (z)
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, size_t));
		else
			snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, unsigned));
		break;
	case 'f':
	case 'g':
	case 'e':
		snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, double));
		break;
	case 'p':
		snprintf(tmp, sizeof(tmp), "%p", va_arg(*ap, void *));
		break;
	default:
		snprintf(tmp, sizeof(tmp), "?");
	}
	put(s, tmp, strlen(tmp));
}

/*
 * Walk the key=value template. Each value is first rendered raw into a
 * scratch buffer; a value that is exactly one numeric conversion is written
 * bare, anything else is a string and quoted when the format needs it. So a
 * value like "%dms" or "%s/%s" stays one well-formed field in both formats.
 */
static void put_fields(struct sink *s, enum log_format f, const char *fmt, va_list *ap)
{
	const char *p = fmt;

	while (*p) {
		char raw[1024];
		struct sink v = { .buf = raw, .len = sizeof(raw) };
		int conversions = 0;
		bool numeric = false, literal = false;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		/* The key runs up to '=' (or a space: a key without value). */
		const char *k = p;
		while (*p && *p != '=' && *p != ' ')
			p++;
		if (f == LOG_FORMAT_JSON) {
			put(s, ",\"", 2);
			put(s, k, (size_t)(p - k));
			put(s, "\":", 2);
		} else {
			putc_(s, ' ');
			put(s, k, (size_t)(p - k));
			putc_(s, '=');
		}
		if (*p == '=')
			p++;
		raw[0] = '\0';
		while (*p && *p != ' ') {
			if (*p == '%' && p[1] == '%') {
				putc_(&v, '%');
				literal = true;
				p += 2;
			} else if (*p == '%') {
				char spec[16];
				p++;
				char conv = scan_conversion(&p, spec, sizeof(spec));
				conversions++;
				if (conv == 's') {
					const char *sv = va_arg(*ap, const char *);
					sv = sv ? sv : "(null)";
					put(&v, sv, strlen(sv));
					numeric = false;
				} else {
					put_number(&v, spec, conv, ap);
					numeric = conv != 'p';
				}
			} else {
				putc_(&v, *p++);
				literal = true;
			}
		}
		if (numeric && conversions == 1 && !literal &&
		    strspn(raw, "0123456789-+.eE") == strlen(raw) && raw[0])
			put(s, raw, v.pos);
		else
			put_string_value(s, raw, f);
	}
}

size_t log_format_line(char *buf, size_t len, enum log_format f, enum log_level level,
		       const char *msg, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .len = len };
	va_list cp;

	if (len < 8)
		return 0;
	buf[0] = '\0';
	if (f == LOG_FORMAT_JSON) {
		put(&s, "{\"level\":\"", 10);
		put(&s, level_names[level], strlen(level_names[level]));
		put(&s, "\",\"msg\":", 8);
		put_quoted(&s, msg);
	} else {
		put(&s, "level=", 6);
		put(&s, level_names[level], strlen(level_names[level]));
		put(&s, " msg=", 5);
		put_quoted(&s, msg);
	}
	if (fmt && *fmt) {
		va_copy(cp, ap);
		put_fields(&s, f, fmt, &cp);
		va_end(cp);
	}
	if (f == LOG_FORMAT_JSON)
		putc_(&s, '}');
	if (s.cut && len > 8) {
		/* Mark the cut; JSON lines stay one line, though not valid. */
		memcpy(buf + s.pos - 3, "...", 3);
	}
	return s.pos;
}

void log_eventv(enum log_level level, const char *msg, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX], ts[KTIME_MICRO_LEN];
	FILE *out = log_out ? log_out : stderr;

	if (level < log_min)
		return;
	ktime_format(ktime_wall_us(), 3, ts, sizeof(ts));

	log_format_line(line, sizeof(line), log_fmt, level, msg, fmt, ap);
	flockfile(out);
	if (log_fmt == LOG_FORMAT_JSON)
		fprintf(out, "{\"ts\":\"%s\",%s\n", ts, line + 1);
	else
		fprintf(out, "ts=%s %s\n", ts, line);
	fflush(out);
	funlockfile(out);
}

void log_event(enum log_level level, const char *msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_eventv(level, msg, fmt, ap);
	va_end(ap);
}

int log_setup_flags(const char *prog, const char *level, const char *format)
{
	enum log_level l;
	enum log_format f;

	if (log_level_parse(level, &l) < 0) {
		fprintf(stderr,
			"%s: --log-level: invalid value \"%s\": want debug, info, warn or error\n",
			prog, level ? level : "");
		return -EINVAL;
	}
	if (log_format_parse(format, &f) < 0) {
		fprintf(stderr, "%s: --log-format: invalid value \"%s\": want logfmt or json\n",
			prog, format ? format : "");
		return -EINVAL;
	}
	log_setup(l, f, stderr);
	return 0;
}
