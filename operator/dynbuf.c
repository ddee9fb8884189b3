/*
 * Bounded growing buffer: doubling growth clamped to the cap plus the NUL.
 */
#include "dynbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void dynbuf_init(struct dynbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

/* Make room for need bytes (content plus NUL); need <= max + 1. */
static int grow(struct dynbuf *b, size_t need)
{
	size_t alloc = b->alloc ? b->alloc : DYNBUF_FIRST_ALLOC;
	char *p;

	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? SIZE_MAX : alloc * 2;
	if (b->max < SIZE_MAX && alloc > b->max + 1)
		alloc = b->max + 1;
	p = realloc(b->p, alloc);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->alloc = alloc;
	return 0;
}

int dynbuf_add(struct dynbuf *b, const void *data, size_t n)
{
	if (n > b->max - b->len) {
		b->toobig = true;
		return -EFBIG;
	}
	if (b->len + n + 1 > b->alloc) {
		int r = grow(b, b->len + n + 1);
		if (r < 0)
			return r;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

void dynbuf_reset(struct dynbuf *b, size_t keep)
{
	b->len = 0;
	b->toobig = false;
	if (b->alloc > keep) {
		free(b->p);
		b->p = NULL;
		b->alloc = 0;
	} else if (b->p) {
		b->p[0] = '\0';
	}
}

void dynbuf_free(struct dynbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->alloc = 0;
	b->toobig = false;
}

const char *dynbuf_str(const struct dynbuf *b)
{
	return b->p ? b->p : "";
}

char *dynbuf_take(struct dynbuf *b, size_t *ret_len)
{
	char *p = b->p;
	if (ret_len)
		*ret_len = b->len;
	b->p = NULL;
	b->len = b->alloc = 0;
	return p;
}
