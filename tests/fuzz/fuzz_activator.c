/*
 * libFuzzer target for the activator's request parsing (reconcilers/actreq.c):
 * the Host header, the Accept header and the body a client sends. The input
 * is split at the first two NUL bytes into Host, Accept and body; every
 * part must be parsed or refused (with a message) without reading out of
 * bounds, and a parsed Host must give DNS labels of at most 63 bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *z1 = memchr(p, '\0', size);
	size_t hl = z1 ? (size_t)(z1 - p) : size;
	char *host = strndup(p, hl);
	const char *rest = z1 ? z1 + 1 : p + size;
	size_t rl = size - (size_t)(rest - p);
	const char *z2 = memchr(rest, '\0', rl);
	size_t al = z2 ? (size_t)(z2 - rest) : rl;
	char *accept = strndup(rest, al);
	const char *body = z2 ? z2 + 1 : rest + rl;
	size_t bl = size - (size_t)(body - p);
	/* The body in a buffer of exactly its size: ASan sees any overread. */
	char *b = malloc(bl ? bl : 1);
	struct actreq_target t;
	char err[256];

	if (!host || !accept || !b)
		abort();
	memcpy(b, body, bl);
	if (actreq_parse_host(host, &t, err, sizeof(err)) == 0) {
		if (strlen(t.name) == 0 || strlen(t.name) > 63 || strlen(t.ns) == 0 ||
		    strlen(t.ns) > 63)
			abort();
	} else if (!err[0]) {
		abort();
	}
	(void)actreq_wants_stream(accept, b, bl);
	(void)actreq_wants_stream(NULL, b, bl);
	(void)actreq_drop_request_header(host);
	(void)actreq_drop_response_header(accept);
	free(host);
	free(accept);
	free(b);
	return 0;
}
