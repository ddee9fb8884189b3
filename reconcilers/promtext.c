/*
 * promtext: a strict, bounded parser for the Prometheus text exposition
 * format 0.0.4, and the queries the autoscaler needs on a parsed page.
 *
 * The grammar followed is the one of the reference parser (prometheus/
 * common expfmt's TextParser): one sample or comment per line, tokens
 * separated by blanks or tabs, metric names [a-zA-Z_:][a-zA-Z0-9_:]*,
 * label names [a-zA-Z_][a-zA-Z0-9_]*, label values in double quotes with
 * the escapes \\ \" \n only, a float value (decimal, NaN, +Inf, -Inf) and
 * an optional integer timestamp in milliseconds. Two liberties: a "\r"
 * before the "\n" is ignored, and hexadecimal floats are refused.
 *
 * Storage: every string (metric name, label name, label value) is interned
 * once in a pool through an open-addressing hash table, so a page that
 * repeats model_name="llama-7b" on every line stores it once, and queries
 * compare 32-bit offsets rather than strings.
 */
#include "promtext.h"
#include "fnv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NO_TS INT64_MIN
#define NONE UINT32_MAX
#define MAX_MATCHERS 16
#define MAX_BUCKETS 512
#define MAX_FLOAT_TOKEN 128

enum {
	FAM_HAS_TYPE = 1,
	FAM_HAS_HELP = 2,
	FAM_HAS_SAMPLES = 4,
};

struct psample {
	double value;
	int64_t ts;
	uint32_t name;   /* pool offset */
	uint32_t labels; /* index of the first pair in page->labels */
	uint16_t nlabels;
	uint8_t type; /* enum promtext_type of its family */
};

struct plabel {
	uint32_t name; /* pool offsets */
	uint32_t value;
};

struct family {
	uint32_t name;
	uint8_t type;
	uint8_t flags;
};

struct slot {
	uint32_t off; /* pool offset + 1; 0 = empty slot */
	uint32_t hash;
	int32_t family; /* index in page->families, or -1 */
};

struct promtext {
	char *pool;
	size_t pool_len, pool_cap;
	struct slot *tab;
	size_t tab_cap, tab_used; /* tab_cap is a power of two */
	struct psample *samples;
	size_t n_samples, cap_samples;
	struct plabel *labels;
	size_t n_labels, cap_labels;
	struct family *families;
	size_t n_families, cap_families;
};

/* The state of one parse: the page being built and where we are. */
struct parser {
	struct promtext *page;
	struct promtext_limits lim;
	struct promtext_error *err;
	unsigned line;
	const char *p;   /* cursor in the current line */
	const char *end; /* end of the current line (exclusive) */
	char *scratch;   /* unescaped label value or help text */
	size_t scratch_cap;
};

/* Record an error naming the current line; returns r for tail calls. */
static int fail(struct parser *ps, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parser *ps, int r, const char *fmt, ...)
{
	char what[128];
	va_list ap;

	if (!ps->err)
		return r;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ps->err->line = ps->line;
	if (ps->line)
		snprintf(ps->err->msg, sizeof(ps->err->msg), "line %u: %s", ps->line, what);
	else
		snprintf(ps->err->msg, sizeof(ps->err->msg), "%s", what);
	return r;
}

static void resolve_limits(const struct promtext_limits *in, struct promtext_limits *out)
{
	static const struct promtext_limits def = {
		.max_body = 16u << 20,
		.max_line = 64u << 10,
		.max_samples = 200000,
		.max_labels = 64,
		.max_name = 512,
		.max_label_value = 4096,
	};

	*out = def;
	if (!in)
		return;
	if (in->max_body)
		out->max_body = in->max_body;
	if (in->max_line)
		out->max_line = in->max_line;
	if (in->max_samples)
		out->max_samples = in->max_samples;
	if (in->max_labels)
		out->max_labels = in->max_labels;
	if (in->max_name)
		out->max_name = in->max_name;
	if (in->max_label_value)
		out->max_label_value = in->max_label_value;
	/* A sample records its label count in 16 bits. */
	if (out->max_labels > UINT16_MAX)
		out->max_labels = UINT16_MAX;
}

/* Grow *arr to hold at least need elements of size sz, doubling. */
static int grow(void **arr, size_t *cap, size_t need, size_t sz)
{
	size_t n = *cap ? *cap : 16;
	void *a;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2 / sz)
			return -ENOMEM;
		n *= 2;
	}
	a = realloc(*arr, n * sz);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = n;
	return 0;
}

static uint32_t hash_bytes(const char *s, size_t len)
{
	return fnv32_add(FNV32_INIT, s, len);
}

static bool slot_is(const struct promtext *pg, const struct slot *sl, uint32_t h, const char *s,
		    size_t len)
{
	const char *str = pg->pool + sl->off - 1;

	return sl->hash == h && memcmp(str, s, len) == 0 && str[len] == '\0';
}

/* The slot holding s, or -1. */
static long lookup(const struct promtext *pg, const char *s, size_t len)
{
	uint32_t h;
	size_t mask;

	if (!pg->tab_cap || memchr(s, '\0', len))
		return -1;
	h = hash_bytes(s, len);
	mask = pg->tab_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct slot *sl = &pg->tab[i];
		if (!sl->off)
			return -1;
		if (slot_is(pg, sl, h, s, len))
			return (long)i;
	}
}

static int rehash(struct promtext *pg)
{
	size_t cap = pg->tab_cap ? pg->tab_cap * 2 : 256;
	struct slot *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < pg->tab_cap; i++) {
		struct slot sl = pg->tab[i];
		size_t j;
		if (!sl.off)
			continue;
		for (j = sl.hash & (cap - 1); t[j].off; j = (j + 1) & (cap - 1))
			;
		t[j] = sl;
	}
	free(pg->tab);
	pg->tab = t;
	pg->tab_cap = cap;
	return 0;
}

/* Intern s; the slot index goes to *ret_slot. */
static int intern(struct promtext *pg, const char *s, size_t len, size_t *ret_slot)
{
	uint32_t h = hash_bytes(s, len);
	size_t i;
	int r;

	if ((pg->tab_used + 1) * 2 > pg->tab_cap) {
		r = rehash(pg);
		if (r < 0)
			return r;
	}
	for (i = h & (pg->tab_cap - 1); pg->tab[i].off; i = (i + 1) & (pg->tab_cap - 1)) {
		if (slot_is(pg, &pg->tab[i], h, s, len)) {
			*ret_slot = i;
			return 0;
		}
	}
	if (pg->pool_len + len + 1 >= UINT32_MAX)
		return -E2BIG;
	r = grow((void **)&pg->pool, &pg->pool_cap, pg->pool_len + len + 1, 1);
	if (r < 0)
		return r;
	memcpy(pg->pool + pg->pool_len, s, len);
	pg->pool[pg->pool_len + len] = '\0';
	pg->tab[i] = (struct slot){ (uint32_t)pg->pool_len + 1, h, -1 };
	pg->pool_len += len + 1;
	pg->tab_used++;
	*ret_slot = i;
	return 0;
}

static uint32_t slot_off(const struct promtext *pg, size_t slot)
{
	return pg->tab[slot].off - 1;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_blanks(struct parser *ps)
{
	while (ps->p < ps->end && is_blank(*ps->p))
		ps->p++;
}

static bool name_start(char c, bool metric)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static bool name_char(char c, bool metric)
{
	return name_start(c, metric) || (c >= '0' && c <= '9');
}

/* Read a metric (metric=true) or label name at the cursor. */
static int read_name(struct parser *ps, bool metric, const char **ret_s, size_t *ret_len)
{
	const char *s = ps->p;
	const char *what = metric ? "metric" : "label";

	if (s >= ps->end || !name_start(*s, metric)) {
		if (s >= ps->end)
			return fail(ps, -EINVAL, "expected a %s name", what);
		return fail(ps, -EINVAL,
			    "invalid character '%c' (0x%02x) "
			    "where a %s name was expected",
			    (*s >= 0x20 && *s < 0x7f) ? *s : '?', (unsigned char)*s, what);
	}
	while (ps->p < ps->end && name_char(*ps->p, metric))
		ps->p++;
	if ((size_t)(ps->p - s) > ps->lim.max_name)
		return fail(ps, -E2BIG, "%s name is longer than %zu bytes", what, ps->lim.max_name);
	*ret_s = s;
	*ret_len = (size_t)(ps->p - s);
	return 0;
}

/* NaN (unsigned, as Go's ParseFloat wants it), [+-]Inf, [+-]Infinity. */
static bool parse_special(const char *s, size_t len, double *ret)
{
	bool neg = len && s[0] == '-';
	size_t o = len && (s[0] == '+' || s[0] == '-');

	if (len == 3 && strncasecmp(s, "nan", 3) == 0) {
		*ret = NAN;
		return true;
	}
	if ((len - o == 3 && strncasecmp(s + o, "inf", 3) == 0) ||
	    (len - o == 8 && strncasecmp(s + o, "infinity", 8) == 0)) {
		*ret = neg ? -INFINITY : INFINITY;
		return true;
	}
	return false;
}

/* The length of [+-]?digits[.digits][e[+-]digits] at s, 0 if none. */
static size_t decimal_len(const char *s, size_t len)
{
	size_t i = 0, digits = 0, e = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (!digits)
		return 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			e++;
		if (!e)
			return 0;
	}
	return i;
}

/* A strict float: decimal or special; hexadecimal floats are refused. */
static int parse_float(const char *s, size_t len, double *ret)
{
	char buf[MAX_FLOAT_TOKEN];
	char *endp;
	double v;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (parse_special(s, len, ret))
		return 0;
	if (decimal_len(s, len) != len)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = strtod(buf, &endp);
	if (endp != buf + len || isinf(v))
		return -ERANGE;
	*ret = v;
	return 0;
}

static int parse_int64(const char *s, size_t len, int64_t *ret)
{
	uint64_t acc = 0, lim = (uint64_t)INT64_MAX;
	bool neg = false;
	size_t i = 0;

	if (len && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i++;
	}
	if (i == len)
		return -EINVAL;
	if (neg)
		lim++;
	for (; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9)
			return -EINVAL;
		if (acc > (lim - d) / 10)
			return -ERANGE;
		acc = acc * 10 + d;
	}
	*ret = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool valid_utf8(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(u + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/*
 * Unescape the text between the cursor and the closing quote (quoted) or
 * the end of the line (help text) into ps->scratch.
 */
static int read_escaped(struct parser *ps, bool quoted, size_t max, size_t *ret_len)
{
	const char *what = quoted ? "label value" : "help text";
	size_t n = 0;
	int r;

	r = grow((void **)&ps->scratch, &ps->scratch_cap, (size_t)(ps->end - ps->p) + 1, 1);
	if (r < 0)
		return r;
	for (;;) {
		char c;
		if (ps->p >= ps->end) {
			if (quoted)
				return fail(ps, -EINVAL, "label value not terminated");
			break;
		}
		c = *ps->p++;
		if (quoted && c == '"')
			break;
		if (c == '\0')
			return fail(ps, -EINVAL, "NUL byte in %s", what);
		if (c == '\\') {
			if (ps->p >= ps->end)
				return fail(ps, -EINVAL,
					    "%s ends in a lone "
					    "backslash",
					    what);
			c = *ps->p++;
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && !(quoted && c == '"'))
				return fail(ps, -EINVAL,
					    "invalid escape "
					    "sequence '\\%c' in %s",
					    (c >= 0x20 && c < 0x7f) ? c : '?', what);
		}
		if (n >= max)
			return fail(ps, -E2BIG, "%s is longer than %zu bytes", what, max);
		ps->scratch[n++] = c;
	}
	if (!valid_utf8(ps->scratch, n))
		return fail(ps, -EINVAL, "%s is not valid UTF-8", what);
	*ret_len = n;
	return 0;
}

static int new_family(struct parser *ps, size_t slot, int32_t *ret)
{
	struct promtext *pg = ps->page;
	int r;

	if (pg->tab[slot].family >= 0) {
		*ret = pg->tab[slot].family;
		return 0;
	}
	r = grow((void **)&pg->families, &pg->cap_families, pg->n_families + 1,
		 sizeof(struct family));
	if (r < 0)
		return r;
	pg->families[pg->n_families] = (struct family){ slot_off(pg, slot), PROMTEXT_UNTYPED, 0 };
	pg->tab[slot].family = (int32_t)pg->n_families;
	*ret = (int32_t)pg->n_families++;
	return 0;
}

static int parse_type_word(struct parser *ps, uint8_t *ret)
{
	static const char *const names[] = {
		[PROMTEXT_UNTYPED] = "untyped", [PROMTEXT_COUNTER] = "counter",
		[PROMTEXT_GAUGE] = "gauge",     [PROMTEXT_HISTOGRAM] = "histogram",
		[PROMTEXT_SUMMARY] = "summary",
	};
	const char *w;
	size_t wl;

	skip_blanks(ps);
	w = ps->p;
	while (ps->p < ps->end && !is_blank(*ps->p))
		ps->p++;
	wl = (size_t)(ps->p - w);
	skip_blanks(ps);
	if (ps->p != ps->end)
		return fail(ps, -EINVAL, "unexpected text after the type");
	for (uint8_t t = 0; t < sizeof(names) / sizeof(names[0]); t++) {
		if (strlen(names[t]) == wl && strncasecmp(w, names[t], wl) == 0) {
			*ret = t;
			return 0;
		}
	}
	return fail(ps, -EINVAL, "unknown metric type \"%.*s\"", (int)(wl > 32 ? 32 : wl), w);
}

/* "# HELP name text" or "# TYPE name type"; other comments are skipped. */
static int parse_comment(struct parser *ps)
{
	bool help;
	const char *name;
	size_t len, slot, n;
	int32_t fam;
	struct family *f;
	int r;

	ps->p++; /* '#' */
	skip_blanks(ps);
	if (ps->end - ps->p >= 4 && memcmp(ps->p, "HELP", 4) == 0)
		help = true;
	else if (ps->end - ps->p >= 4 && memcmp(ps->p, "TYPE", 4) == 0)
		help = false;
	else
		return 0;
	ps->p += 4;
	if (ps->p < ps->end && !is_blank(*ps->p))
		return 0; /* "# HELPER ..." is a plain comment */
	skip_blanks(ps);
	r = read_name(ps, true, &name, &len);
	if (r < 0)
		return r;
	if (ps->p < ps->end && !is_blank(*ps->p))
		return fail(ps, -EINVAL,
			    "invalid character after the metric "
			    "name in # %s",
			    help ? "HELP" : "TYPE");
	r = intern(ps->page, name, len, &slot);
	if (r == 0)
		r = new_family(ps, slot, &fam);
	if (r < 0)
		return fail(ps, r, "out of memory");
	f = &ps->page->families[fam];
	if (help) {
		if (f->flags & FAM_HAS_HELP)
			return fail(ps, -EINVAL, "second HELP line for %.*s",
				    (int)(len > 64 ? 64 : len), name);
		f->flags |= FAM_HAS_HELP;
		skip_blanks(ps);
		return read_escaped(ps, false, ps->lim.max_line, &n);
	}
	if (f->flags & FAM_HAS_TYPE)
		return fail(ps, -EINVAL, "second TYPE line for %.*s", (int)(len > 64 ? 64 : len),
			    name);
	if (f->flags & FAM_HAS_SAMPLES)
		return fail(ps, -EINVAL, "TYPE line for %.*s after its samples",
			    (int)(len > 64 ? 64 : len), name);
	f->flags |= FAM_HAS_TYPE;
	return parse_type_word(ps, &f->type);
}

static bool has_suffix(const char *s, size_t len, const char *suf, size_t *ret_base)
{
	size_t sl = strlen(suf);

	if (len <= sl || memcmp(s + len - sl, suf, sl) != 0)
		return false;
	*ret_base = len - sl;
	return true;
}

/*
 * The family a sample belongs to: its own name if that was declared, else
 * a histogram or summary it is the _bucket/_sum/_count series of, else a
 * new untyped family of its own.
 */
static int sample_family(struct parser *ps, const char *name, size_t len, size_t name_slot,
			 int32_t *ret)
{
	struct promtext *pg = ps->page;
	static const char *const sufs[] = { "_bucket", "_sum", "_count" };
	size_t base;
	long bs;

	if (pg->tab[name_slot].family >= 0 &&
	    (pg->families[pg->tab[name_slot].family].flags & FAM_HAS_TYPE)) {
		*ret = pg->tab[name_slot].family;
		return 0;
	}
	for (size_t i = 0; i < 3; i++) {
		if (!has_suffix(name, len, sufs[i], &base))
			continue;
		bs = lookup(pg, name, base);
		if (bs < 0 || pg->tab[bs].family < 0)
			continue;
		const struct family *f = &pg->families[pg->tab[bs].family];
		if (f->type == PROMTEXT_HISTOGRAM || (f->type == PROMTEXT_SUMMARY && i > 0)) {
			*ret = pg->tab[bs].family;
			return 0;
		}
	}
	return new_family(ps, name_slot, ret);
}

/* le on a histogram bucket and quantile on a summary must be floats. */
static int check_special_label(struct parser *ps, uint8_t type, bool bucket, const char *lname,
			       size_t llen, size_t vlen)
{
	double v;
	bool le = llen == 2 && memcmp(lname, "le", 2) == 0;
	bool qu = llen == 8 && memcmp(lname, "quantile", 8) == 0;

	if (!((le && type == PROMTEXT_HISTOGRAM && bucket) || (qu && type == PROMTEXT_SUMMARY)))
		return 0;
	if (parse_float(ps->scratch, vlen, &v) < 0)
		return fail(ps, -EINVAL,
			    "expected a float as the value of "
			    "the '%s' label",
			    le ? "le" : "quantile");
	return 0;
}

static int add_label(struct parser *ps, size_t first, const char *lname, size_t llen, size_t vlen)
{
	struct promtext *pg = ps->page;
	size_t ns, vs;
	uint32_t noff;
	int r;

	if (pg->n_labels - first >= ps->lim.max_labels)
		return fail(ps, -E2BIG, "more than %zu labels", ps->lim.max_labels);
	if (pg->n_labels >= UINT32_MAX)
		return fail(ps, -E2BIG, "too many labels in the page");
	if (llen == 8 && memcmp(lname, "__name__", 8) == 0)
		return fail(ps, -EINVAL, "label name __name__ is reserved");
	r = intern(pg, lname, llen, &ns);
	if (r == 0)
		r = intern(pg, ps->scratch, vlen, &vs);
	if (r == 0)
		r = grow((void **)&pg->labels, &pg->cap_labels, pg->n_labels + 1,
			 sizeof(struct plabel));
	if (r < 0)
		return fail(ps, r, "out of memory");
	noff = slot_off(pg, ns);
	for (size_t i = first; i < pg->n_labels; i++)
		if (pg->labels[i].name == noff)
			return fail(ps, -EINVAL, "duplicate label name \"%.*s\"", (int)llen, lname);
	pg->labels[pg->n_labels++] = (struct plabel){ noff, slot_off(pg, vs) };
	return 0;
}

/* The {name="value",...} part of a sample, cursor on '{'. */
static int parse_labels(struct parser *ps, uint8_t type, bool bucket, size_t first)
{
	const char *lname;
	size_t llen, vlen;
	int r;

	ps->p++;
	for (;;) {
		skip_blanks(ps);
		if (ps->p < ps->end && *ps->p == '}')
			break;
		r = read_name(ps, false, &lname, &llen);
		if (r < 0)
			return r;
		skip_blanks(ps);
		if (ps->p >= ps->end || *ps->p != '=')
			return fail(ps, -EINVAL,
				    "expected '=' after label "
				    "name \"%.*s\"",
				    (int)llen, lname);
		ps->p++;
		skip_blanks(ps);
		if (ps->p >= ps->end || *ps->p != '"')
			return fail(ps, -EINVAL,
				    "expected '\"' to start the "
				    "value of label \"%.*s\"",
				    (int)llen, lname);
		ps->p++;
		r = read_escaped(ps, true, ps->lim.max_label_value, &vlen);
		if (r == 0)
			r = check_special_label(ps, type, bucket, lname, llen, vlen);
		if (r == 0)
			r = add_label(ps, first, lname, llen, vlen);
		if (r < 0)
			return r;
		skip_blanks(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p >= ps->end || *ps->p != '}')
			return fail(ps, -EINVAL,
				    "expected ',' or '}' after "
				    "the value of label \"%.*s\"",
				    (int)llen, lname);
	}
	ps->p++;
	return 0;
}

/* The value and optional timestamp after the name and labels. */
static int parse_value(struct parser *ps, double *ret_v, int64_t *ret_ts)
{
	const char *t;
	int r;

	skip_blanks(ps);
	t = ps->p;
	while (ps->p < ps->end && !is_blank(*ps->p))
		ps->p++;
	if (t == ps->p)
		return fail(ps, -EINVAL, "expected a value");
	r = parse_float(t, (size_t)(ps->p - t), ret_v);
	if (r < 0)
		return fail(ps, -EINVAL, "invalid value \"%.*s\"",
			    (int)(ps->p - t > 40 ? 40 : ps->p - t), t);
	skip_blanks(ps);
	*ret_ts = NO_TS;
	if (ps->p == ps->end)
		return 0;
	t = ps->p;
	while (ps->p < ps->end && !is_blank(*ps->p))
		ps->p++;
	r = parse_int64(t, (size_t)(ps->p - t), ret_ts);
	if (r < 0 || *ret_ts == NO_TS)
		return fail(ps, -EINVAL, "invalid timestamp \"%.*s\"",
			    (int)(ps->p - t > 40 ? 40 : ps->p - t), t);
	skip_blanks(ps);
	if (ps->p != ps->end)
		return fail(ps, -EINVAL, "unexpected text after the timestamp");
	return 0;
}

static int parse_sample(struct parser *ps)
{
	struct promtext *pg = ps->page;
	size_t first = pg->n_labels, len, slot, base;
	const char *name;
	struct psample s;
	int32_t fam;
	bool bucket;
	int r;

	if (pg->n_samples >= ps->lim.max_samples)
		return fail(ps, -E2BIG, "more than %zu samples", ps->lim.max_samples);
	r = read_name(ps, true, &name, &len);
	if (r < 0)
		return r;
	if (ps->p < ps->end && !is_blank(*ps->p) && *ps->p != '{')
		return fail(ps, -EINVAL,
			    "invalid character '%c' in metric "
			    "name",
			    (*ps->p >= 0x20 && *ps->p < 0x7f) ? *ps->p : '?');
	r = intern(pg, name, len, &slot);
	if (r == 0)
		r = sample_family(ps, name, len, slot, &fam);
	if (r == 0)
		r = grow((void **)&pg->samples, &pg->cap_samples, pg->n_samples + 1,
			 sizeof(struct psample));
	if (r < 0)
		return fail(ps, r, "out of memory");
	s.name = slot_off(pg, slot);
	s.type = pg->families[fam].type;
	pg->families[fam].flags |= FAM_HAS_SAMPLES;
	bucket = has_suffix(name, len, "_bucket", &base);
	skip_blanks(ps);
	if (ps->p < ps->end && *ps->p == '{') {
		r = parse_labels(ps, s.type, bucket, first);
		if (r < 0)
			return r;
	}
	r = parse_value(ps, &s.value, &s.ts);
	if (r < 0)
		return r;
	s.labels = (uint32_t)first;
	s.nlabels = (uint16_t)(pg->n_labels - first);
	pg->samples[pg->n_samples++] = s;
	return 0;
}

static int parse_line(struct parser *ps)
{
	skip_blanks(ps);
	if (ps->p == ps->end)
		return 0;
	if (*ps->p == '#')
		return parse_comment(ps);
	return parse_sample(ps);
}

static int parse_body(struct parser *ps, const char *body, size_t len)
{
	size_t pos = 0;
	int r;

	while (pos < len) {
		const char *nl = memchr(body + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - body) : len;

		ps->line++;
		if (end - pos > ps->lim.max_line)
			return fail(ps, -E2BIG, "line is longer than %zu bytes", ps->lim.max_line);
		ps->p = body + pos;
		ps->end = body + end;
		if (ps->end > ps->p && ps->end[-1] == '\r')
			ps->end--;
		r = parse_line(ps);
		if (r < 0)
			return r;
		pos = end + 1;
	}
	return 0;
}

void promtext_free(struct promtext *page)
{
	if (!page)
		return;
	free(page->pool);
	free(page->tab);
	free(page->samples);
	free(page->labels);
	free(page->families);
	free(page);
}

int promtext_parse(const char *body, size_t len, const struct promtext_limits *limits,
		   struct promtext_error *err, struct promtext **ret_page)
{
	struct parser ps = { .err = err };
	int r;

	resolve_limits(limits, &ps.lim);
	if (err) {
		err->line = 0;
		err->msg[0] = '\0';
	}
	if (!body && len)
		return fail(&ps, -EINVAL, "no body");
	if (len > ps.lim.max_body) {
		r = fail(&ps, -E2BIG,
			 "body is %zu bytes, more than the "
			 "limit of %zu",
			 len, ps.lim.max_body);
		goto out;
	}
	ps.page = calloc(1, sizeof(*ps.page));
	if (!ps.page)
		return fail(&ps, -ENOMEM, "out of memory");
	r = parse_body(&ps, body, len);
	if (r < 0)
		goto out_free_page;
	*ret_page = ps.page;
	ps.page = NULL;
out_free_page:
	promtext_free(ps.page);
out:
	free(ps.scratch);
	return r;
}

size_t promtext_count(const struct promtext *page)
{
	return page ? page->n_samples : 0;
}

const char *promtext_name(const struct promtext *page, size_t i)
{
	if (!page || i >= page->n_samples)
		return NULL;
	return page->pool + page->samples[i].name;
}

double promtext_value(const struct promtext *page, size_t i)
{
	if (!page || i >= page->n_samples)
		return NAN;
	return page->samples[i].value;
}

/* The pool offset of label name_off's value on sample s, or NONE. */
static uint32_t label_value(const struct promtext *pg, const struct psample *s, uint32_t name_off)
{
	/* Indexing, not pg->labels + s->labels: labels is NULL on a page
	 * without any, and NULL + 0 is undefined. */
	for (uint16_t k = 0; k < s->nlabels; k++)
		if (pg->labels[s->labels + k].name == name_off)
			return pg->labels[s->labels + k].value;
	return NONE;
}

const char *promtext_label(const struct promtext *page, size_t i, const char *label)
{
	long sl;
	uint32_t v;

	if (!page || i >= page->n_samples || !label)
		return NULL;
	sl = lookup(page, label, strlen(label));
	if (sl < 0)
		return NULL;
	v = label_value(page, &page->samples[i], slot_off(page, (size_t)sl));
	return v == NONE ? NULL : page->pool + v;
}

int promtext_timestamp(const struct promtext *page, size_t i, int64_t *ret_ms)
{
	if (!page || i >= page->n_samples || page->samples[i].ts == NO_TS)
		return -ENOENT;
	*ret_ms = page->samples[i].ts;
	return 0;
}

enum promtext_type promtext_family_type(const struct promtext *page, const char *family)
{
	long sl;

	if (!page || !family)
		return PROMTEXT_UNTYPED;
	sl = lookup(page, family, strlen(family));
	if (sl < 0 || page->tab[sl].family < 0)
		return PROMTEXT_UNTYPED;
	return (enum promtext_type)page->families[page->tab[sl].family].type;
}

/* A matcher with its strings resolved to pool offsets. */
struct rmatch {
	uint32_t name;  /* NONE: no sample has this label */
	uint32_t value; /* NONE: no sample has this value */
	bool want_empty;
	bool negate;
};

static uint32_t off_of(const struct promtext *pg, const char *s)
{
	long sl = lookup(pg, s, strlen(s));

	return sl < 0 ? NONE : slot_off(pg, (size_t)sl);
}

/* Resolve name and matchers; -ENOENT if the name was never seen. */
static int resolve(const struct promtext *pg, const char *name, const struct promtext_matcher *m,
		   size_t n, uint32_t *ret_name, struct rmatch *rm)
{
	if (!pg || !name || (n && !m))
		return -EINVAL;
	if (n > MAX_MATCHERS)
		return -E2BIG;
	for (size_t k = 0; k < n; k++) {
		if (!m[k].name || !m[k].value)
			return -EINVAL;
		rm[k].name = off_of(pg, m[k].name);
		rm[k].value = off_of(pg, m[k].value);
		rm[k].want_empty = m[k].value[0] == '\0';
		rm[k].negate = m[k].negate;
	}
	*ret_name = off_of(pg, name);
	return *ret_name == NONE ? -ENOENT : 0;
}

/* PromQL semantics: an absent label and an empty one are the same. */
static bool matches(const struct promtext *pg, const struct psample *s, const struct rmatch *rm,
		    size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint32_t v = rm[k].name == NONE ? NONE : label_value(pg, s, rm[k].name);
		bool empty = v == NONE || pg->pool[v] == '\0';
		bool eq = rm[k].want_empty ? empty : (!empty && v == rm[k].value);
		if (eq == rm[k].negate)
			return false;
	}
	return true;
}

static long next_match(const struct promtext *pg, uint32_t name, const struct rmatch *rm, size_t n,
		       size_t from)
{
	for (size_t i = from; i < pg->n_samples; i++)
		if (pg->samples[i].name == name && matches(pg, &pg->samples[i], rm, n))
			return (long)i;
	return -1;
}

int promtext_find(const struct promtext *page, const char *name, const struct promtext_matcher *m,
		  size_t n, size_t from, size_t *ret_index)
{
	struct rmatch rm[MAX_MATCHERS];
	uint32_t noff;
	long i;
	int r;

	r = resolve(page, name, m, n, &noff, rm);
	if (r < 0)
		return r;
	i = next_match(page, noff, rm, n, from);
	if (i < 0)
		return -ENOENT;
	*ret_index = (size_t)i;
	return 0;
}

int promtext_sum(const struct promtext *page, const char *name, const struct promtext_matcher *m,
		 size_t n, double *ret_sum, size_t *ret_series)
{
	struct rmatch rm[MAX_MATCHERS];
	uint32_t noff;
	size_t count = 0;
	double sum = 0;
	long i;
	int r;

	r = resolve(page, name, m, n, &noff, rm);
	if (r < 0)
		return r;
	for (i = next_match(page, noff, rm, n, 0); i >= 0;
	     i = next_match(page, noff, rm, n, (size_t)i + 1)) {
		sum += page->samples[i].value;
		count++;
	}
	if (!count)
		return -ENOENT;
	*ret_sum = sum;
	if (ret_series)
		*ret_series = count;
	return 0;
}

int promtext_avg(const struct promtext *page, const char *name, const struct promtext_matcher *m,
		 size_t n, double *ret_avg, size_t *ret_series)
{
	double sum;
	size_t count;
	int r;

	r = promtext_sum(page, name, m, n, &sum, &count);
	if (r < 0)
		return r;
	*ret_avg = sum / (double)count;
	if (ret_series)
		*ret_series = count;
	return 0;
}

static void sort_buckets(struct promtext_bucket *b, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct promtext_bucket x = b[i];
		size_t j = i;
		for (; j > 0 && b[j - 1].le > x.le; j--)
			b[j] = b[j - 1];
		b[j] = x;
	}
}

/* Add count to the bucket with bound le in b[0..*n), or append one. */
static int add_bucket(struct promtext_bucket *b, size_t *n, size_t cap, double le, double count)
{
	for (size_t k = 0; k < *n; k++) {
		if (b[k].le == le) {
			b[k].count += count;
			return 0;
		}
	}
	if (*n >= cap)
		return -E2BIG;
	b[(*n)++] = (struct promtext_bucket){ le, count };
	return 0;
}

int promtext_histogram(const struct promtext *page, const char *family,
		       const struct promtext_matcher *m, size_t n, struct promtext_bucket *buckets,
		       size_t cap, size_t *ret_n)
{
	struct rmatch rm[MAX_MATCHERS];
	char name[1024];
	uint32_t noff, le_off;
	size_t nb = 0;
	long i;
	int r;

	if (!family || !buckets ||
	    (size_t)snprintf(name, sizeof(name), "%s_bucket", family) >= sizeof(name))
		return -EINVAL;
	r = resolve(page, name, m, n, &noff, rm);
	if (r < 0)
		return r;
	le_off = off_of(page, "le");
	for (i = next_match(page, noff, rm, n, 0); i >= 0;
	     i = next_match(page, noff, rm, n, (size_t)i + 1)) {
		const struct psample *s = &page->samples[i];
		uint32_t v = le_off == NONE ? NONE : label_value(page, s, le_off);
		double le;
		if (v == NONE || parse_float(page->pool + v, strlen(page->pool + v), &le) < 0 ||
		    isnan(le))
			return -EINVAL;
		r = add_bucket(buckets, &nb, cap, le, s->value);
		if (r < 0)
			return r;
	}
	if (!nb)
		return -ENOENT;
	sort_buckets(buckets, nb);
	/* Pages cut short (or servers that omit it) have no +Inf bucket; the
	 * family's _count is the same number, so it stands in for it. */
	if (!isinf(buckets[nb - 1].le)) {
		double count;
		snprintf(name, sizeof(name), "%s_count", family);
		if (promtext_sum(page, name, m, n, &count, NULL) == 0 && !isnan(count) &&
		    count >= buckets[nb - 1].count) {
			r = add_bucket(buckets, &nb, cap, INFINITY, count);
			if (r < 0)
				return r;
		}
	}
	*ret_n = nb;
	return 0;
}

/* Go's almost.Equal, which PromQL uses to ignore float noise. */
static bool almost_equal(double a, double b, double eps)
{
	const double min_normal = 2.2250738585072014e-308;
	double abs_sum, diff;

	if (a == b)
		return true;
	abs_sum = fabs(a) + fabs(b);
	diff = fabs(a - b);
	if (a == 0 || b == 0 || abs_sum < min_normal)
		return diff < eps * min_normal;
	return diff / fmin(abs_sum, 1.7976931348623157e308) < eps;
}

/* coalesceBuckets and ensureMonotonicAndIgnoreSmallDeltas, in place. */
static size_t coalesce_monotonic(struct promtext_bucket *b, size_t n)
{
	size_t k = 0;
	double prev;

	for (size_t i = 1; i < n; i++) {
		if (b[i].le == b[k].le)
			b[k].count += b[i].count;
		else
			b[++k] = b[i];
	}
	n = k + 1;
	prev = b[0].count;
	for (size_t i = 1; i < n; i++) {
		double cur = b[i].count;
		if (cur == prev)
			continue;
		if (almost_equal(prev, cur, 1e-12) || cur < prev) {
			b[i].count = prev;
			continue;
		}
		prev = cur;
	}
	return n;
}

/* PromQL's BucketQuantile on a private copy b of n sorted buckets. */
static int quantile_of(double q, struct promtext_bucket *b, size_t n, double *ret)
{
	double rank, start = 0, count;
	size_t i;

	n = coalesce_monotonic(b, n);
	if (n < 2 || b[n - 1].count == 0)
		return -ENODATA;
	rank = q * b[n - 1].count;
	for (i = 0; i < n - 1 && !(b[i].count >= rank); i++)
		;
	if (i == n - 1) {
		*ret = b[n - 2].le;
		return 0;
	}
	if (i == 0 && b[0].le <= 0) {
		*ret = b[0].le;
		return 0;
	}
	count = b[i].count;
	if (i > 0) {
		start = b[i - 1].le;
		count -= b[i - 1].count;
		rank -= b[i - 1].count;
	}
	*ret = start + (b[i].le - start) * (rank / count);
	return 0;
}

int promtext_bucket_quantile(double q, const struct promtext_bucket *buckets, size_t n,
			     double *ret_value)
{
	struct promtext_bucket b[MAX_BUCKETS];

	if (isnan(q) || (n && !buckets))
		return -EINVAL;
	if (n == 0)
		return -ENODATA;
	if (n > MAX_BUCKETS)
		return -E2BIG;
	if (q < 0 || q > 1) {
		*ret_value = q < 0 ? -INFINITY : INFINITY;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (isnan(buckets[i].le))
			return -EINVAL;
		b[i] = buckets[i];
	}
	sort_buckets(b, n);
	if (!isinf(b[n - 1].le) || b[n - 1].le < 0)
		return -ENODATA;
	return quantile_of(q, b, n, ret_value);
}

int promtext_histogram_quantile(double q, const struct promtext_bucket *prev, size_t n_prev,
				const struct promtext_bucket *cur, size_t n_cur, double *ret_value)
{
	struct promtext_bucket d[MAX_BUCKETS];
	bool reset = false;
	size_t n = 0;

	if (isnan(q) || (n_prev && !prev) || (n_cur && !cur))
		return -EINVAL;
	if (n_cur > MAX_BUCKETS)
		return -E2BIG;
	if (n_prev == 0 || n_cur == 0)
		return -ENODATA;
	for (size_t i = 0; i < n_cur; i++) {
		size_t k;
		for (k = 0; k < n_prev && prev[k].le != cur[i].le; k++)
			;
		if (k == n_prev)
			continue;
		if (cur[i].count < prev[k].count)
			reset = true;
		d[n++] = (struct promtext_bucket){ cur[i].le, cur[i].count - prev[k].count };
	}
	if (reset)
		return promtext_bucket_quantile(q, cur, n_cur, ret_value);
	return promtext_bucket_quantile(q, d, n, ret_value);
}
