/*
 * A JSON scanner without a tree: see jsonscan.h. Every routine is a loop
 * over the bytes with a counter for the nesting, so a value nested a
 * million levels deep costs time in proportion to its size and no stack.
 */
#include "jsonscan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DEPTH_FRAMES 256

static size_t ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* p[i] is '"': the index just past the closing quote. */
static int skip_string(const char *p, size_t n, size_t i, size_t *ret_end)
{
	/* memchr to each quote; it ends the string unless an odd number of
	 * backslashes precede it. */
	for (i++; i < n;) {
		const char *q = memchr(p + i, '"', n - i);
		if (!q)
			return -EBADMSG;
		size_t at = (size_t)(q - p), bs = 0;
		while (at - bs > i && p[at - bs - 1] == '\\')
			bs++;
		if (bs % 2 == 0) {
			*ret_end = at + 1;
			return 0;
		}
		i = at + 1;
	}
	return -EBADMSG;
}

static bool literal_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '+' || c == '.';
}

int jsonscan_skip(const char *p, size_t n, size_t i, size_t *ret_end)
{
	size_t depth = 0, e;
	int r;

	i = ws(p, n, i);
	if (i >= n)
		return -EBADMSG;
	if (p[i] == '"')
		return skip_string(p, n, i, ret_end);
	if (p[i] != '{' && p[i] != '[') {
		size_t s = i;
		while (i < n && literal_char(p[i]))
			i++;
		if (i == s)
			return -EBADMSG;
		*ret_end = i;
		return 0;
	}
	while (i < n) {
		switch (p[i]) {
		case '"':
			r = skip_string(p, n, i, &e);
			if (r < 0)
				return r;
			i = e;
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0) {
				*ret_end = i + 1;
				return 0;
			}
			break;
		}
		i++;
	}
	return -EBADMSG;
}

static bool key_is(const char *p, size_t ks, size_t ke, const char *key, size_t klen)
{
	return ke - ks == klen && memcmp(p + ks, key, klen) == 0;
}

/* The member key[0..klen) of the object at p[i]. */
static int member(const char *p, size_t n, size_t i, const char *key, size_t klen,
		  size_t *ret_start, size_t *ret_end)
{
	size_t ke, vs, ve;
	int r;

	i = ws(p, n, i);
	if (i >= n || p[i] != '{')
		return -EBADMSG;
	i = ws(p, n, i + 1);
	if (i < n && p[i] == '}')
		return -ENOENT;
	for (;;) {
		if (i >= n || p[i] != '"')
			return -EBADMSG;
		r = skip_string(p, n, i, &ke);
		if (r < 0)
			return r;
		vs = ws(p, n, ke);
		if (vs >= n || p[vs] != ':')
			return -EBADMSG;
		vs = ws(p, n, vs + 1);
		r = jsonscan_skip(p, n, vs, &ve);
		if (r < 0)
			return r;
		if (key_is(p, i + 1, ke - 1, key, klen)) {
			*ret_start = vs;
			*ret_end = ve;
			return 0;
		}
		i = ws(p, n, ve);
		if (i < n && p[i] == '}')
			return -ENOENT;
		if (i >= n || p[i] != ',')
			return -EBADMSG;
		i = ws(p, n, i + 1);
	}
}

int jsonscan_path(const char *p, size_t n, size_t i, const char *path, size_t *ret_start,
		  size_t *ret_end)
{
	size_t s = ws(p, n, i), e;
	int r = jsonscan_skip(p, n, s, &e);

	while (r == 0 && *path) {
		const char *dot = strchr(path, '.');
		size_t klen = dot ? (size_t)(dot - path) : strlen(path);
		r = member(p, e, s, path, klen, &s, &e);
		path += klen + (dot ? 1 : 0);
	}
	if (r < 0)
		return r;
	*ret_start = s;
	*ret_end = e;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int jsonscan_string(const char *p, size_t n, size_t i, const char *path, char *out, size_t len)
{
	size_t s, e, o = 0;
	int r = jsonscan_path(p, n, i, path, &s, &e);

	if (r < 0)
		return r;
	if (p[s] != '"' || len == 0)
		return -EBADMSG;
	for (s++, e--; s < e; s++) {
		char c = p[s];
		if (c == '\\') {
			if (++s >= e)
				return -EBADMSG;
			switch (p[s]) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u': {
				int v = 0;
				for (int k = 1; k <= 4; k++) {
					int h = s + (size_t)k < e ? hexval(p[s + (size_t)k]) : -1;
					if (h < 0)
						return -EBADMSG;
					v = v * 16 + h;
				}
				if (v == 0 || v >= 0x80)
					return -E2BIG;
				c = (char)v;
				s += 4;
				break;
			}
			default:
				c = p[s];
				break;
			}
		}
		if (o + 1 >= len)
			return -E2BIG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int jsonscan_next(const char *p, size_t n, size_t *cursor, size_t *ret_start, size_t *ret_end)
{
	size_t c = ws(p, n, *cursor);
	int r;

	if (c >= n)
		return -EBADMSG;
	if (p[c] == '[') {
		c = ws(p, n, c + 1);
		if (c < n && p[c] == ']') {
			*cursor = c;
			return 0;
		}
	} else if (p[c] == ',') {
		c = ws(p, n, c + 1);
	} else if (p[c] == ']') {
		return 0;
	} else {
		return -EBADMSG;
	}
	r = jsonscan_skip(p, n, c, ret_end);
	if (r < 0)
		return r;
	*ret_start = c;
	*cursor = *ret_end;
	return 1;
}

struct frame {
	bool obj, want_key;
	size_t ks, kl; /* the current member's key, in p */
	size_t idx;    /* the current element's index */
};

static void write_path(const char *p, const struct frame *f, size_t d, char *out, size_t len)
{
	size_t o = 0;
	int w;

	if (!len)
		return;
	out[0] = '\0';
	for (size_t k = 0; k < d && o < len; k++) {
		if (f[k].obj)
			w = snprintf(out + o, len - o, "%s%.*s", k ? "." : "", (int)f[k].kl,
				     p + f[k].ks);
		else
			w = snprintf(out + o, len - o, "[%zu]", f[k].idx);
		if (w < 0)
			return;
		o += (size_t)w;
	}
}

int jsonscan_depth(const char *p, size_t n, size_t i, unsigned limit, bool skip_managed_fields,
		   char *path, size_t len)
{
	size_t end;
	return jsonscan_depth_end(p, n, i, limit, skip_managed_fields, path, len, &end, NULL);
}

int jsonscan_member_start(const char *p, size_t n, size_t i, const char *key, size_t *ret_start)
{
	size_t klen = strlen(key), ke, vs, ve;
	int r;

	i = ws(p, n, i);
	if (i >= n || p[i] != '{')
		return -EBADMSG;
	i = ws(p, n, i + 1);
	for (;;) {
		if (i >= n || p[i] != '"')
			return i < n && p[i] == '}' ? -ENOENT : -EBADMSG;
		r = skip_string(p, n, i, &ke);
		if (r < 0)
			return r;
		vs = ws(p, n, ke);
		if (vs >= n || p[vs] != ':')
			return -EBADMSG;
		vs = ws(p, n, vs + 1);
		if (key_is(p, i + 1, ke - 1, key, klen)) {
			*ret_start = vs;
			return 0;
		}
		r = jsonscan_skip(p, n, vs, &ve);
		if (r < 0)
			return r;
		i = ws(p, n, ve);
		if (i < n && p[i] == ',')
			i = ws(p, n, i + 1);
	}
}

int jsonscan_depth_end(const char *p, size_t n, size_t i, unsigned limit, bool skip_managed_fields,
		       char *path, size_t len, size_t *ret_end, size_t ret_mf[2])
{
	struct frame f[DEPTH_FRAMES];
	size_t d = 0, e;
	int r;

	if (ret_mf)
		ret_mf[0] = ret_mf[1] = 0;

	if (limit >= DEPTH_FRAMES)
		limit = DEPTH_FRAMES - 1;
	i = ws(p, n, i);
	if (i >= n)
		return -EBADMSG;
	if (p[i] != '{' && p[i] != '[')
		return jsonscan_skip(p, n, i, ret_end);
	while (i < n) {
		switch (p[i]) {
		case '"':
			r = skip_string(p, n, i, &e);
			if (r < 0)
				return r;
			if (d > 0 && f[d - 1].obj && f[d - 1].want_key) {
				f[d - 1].ks = i + 1;
				f[d - 1].kl = e - i - 2;
				f[d - 1].want_key = false;
			}
			i = e;
			continue;
		case '{':
		case '[':
			if (d >= limit) {
				write_path(p, f, d, path, len);
				return 1;
			}
			f[d] = (struct frame){ .obj = p[i] == '{', .want_key = p[i] == '{' };
			d++;
			break;
		case '}':
		case ']':
			if (d == 0)
				return -EBADMSG;
			if (--d == 0) {
				*ret_end = i + 1;
				return 0;
			}
			break;
		case ',':
			if (d > 0) {
				f[d - 1].idx++;
				f[d - 1].want_key = f[d - 1].obj;
			}
			break;
		case ':':
			if (skip_managed_fields && d == 2 && f[0].obj && f[1].obj &&
			    key_is(p, f[0].ks, f[0].ks + f[0].kl, "metadata", 8) &&
			    key_is(p, f[1].ks, f[1].ks + f[1].kl, "managedFields", 13)) {
				r = jsonscan_skip(p, n, i + 1, &e);
				if (r < 0)
					return r;
				if (ret_mf && !ret_mf[1]) {
					ret_mf[0] = i + 1;
					ret_mf[1] = e;
				}
				i = e;
				continue;
			}
			break;
		}
		i++;
	}
	return -EBADMSG;
}
