/*
 * A bounded growing byte buffer (the shape of curl's dynbuf): it grows by
 * doubling, so n appends cost O(n) copies in total, and it never holds more
 * than the cap its owner gave it. An append past the cap fails with -EFBIG
 * and sets toobig, so a callback that must return early can report why
 * afterwards. The content is always NUL-terminated (for parsers that want a
 * C string); the NUL is not counted in len and may sit one byte past the cap.
 *
 * The struct is public (not opaque) on purpose: it is a small value type
 * embedded in clients and requests, like struct backoff. Read p and len;
 * change them only through the functions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The first allocation; later ones double. */
#define DYNBUF_FIRST_ALLOC 16384

struct dynbuf {
	char *p;      /* NULL until the first append */
	size_t len;   /* bytes held, without the NUL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* the cap on len */
	bool toobig;  /* an append was refused for the cap */
};

/* An empty buffer that holds at most max bytes. */
void dynbuf_init(struct dynbuf *b, size_t max);
/* Append n bytes: 0, -EFBIG (over the cap; toobig set, content kept) or
 * -ENOMEM. */
int dynbuf_add(struct dynbuf *b, const void *data, size_t n);
/* Empty it and clear toobig; keeps the memory unless more than keep bytes
 * are allocated (so one huge body is not held forever). */
void dynbuf_reset(struct dynbuf *b, size_t keep);
/* Free the memory; the buffer is empty again, with the same cap. */
void dynbuf_free(struct dynbuf *b);
/* The content as a C string, "" when empty. */
const char *dynbuf_str(const struct dynbuf *b);
/* Hand the memory to the caller (NULL when nothing was ever added) and
 * empty the buffer. */
char *dynbuf_take(struct dynbuf *b, size_t *ret_len);
