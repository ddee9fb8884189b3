/*
 * The activator's request parsing, pure functions (unit tested, fuzzed):
 *
 *   - which InferenceService a request is for, from its Host header
 *     (NAME.NAMESPACE[.svc[.CLUSTER-DOMAIN]][:port]);
 *   - whether the client asked for a stream (Accept: text/event-stream, or
 *     "stream": true at the top of a JSON body, as OpenAI-style APIs do);
 *   - which request and response headers a proxy must not pass on
 *     (hop-by-hop, RFC 9110 section 7.6.1, and the lengths libcurl and
 *     libmicrohttpd compute themselves).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* DNS label limit: Service names and namespaces are at most 63 bytes. */
#define ACTREQ_NAME_MAX 64

struct actreq_target {
	char name[ACTREQ_NAME_MAX];
	char ns[ACTREQ_NAME_MAX];
};

/*
 * Host -> the Service's name and namespace. 0, or -EINVAL with err (for
 * the client) saying what is wrong: empty, an IP address, a bad port, one
 * label only, a label that is not a DNS label, or a third label other than
 * "svc". Upper case is folded (DNS names are case-insensitive).
 */
int actreq_parse_host(const char *host, struct actreq_target *ret, char *err, size_t errlen);

/* true when the request asks for a streamed answer: Accept (may be NULL)
 * names text/event-stream, or body (len bytes, any bytes) is a JSON object
 * whose top-level "stream" is true. Never reads past len. */
bool actreq_wants_stream(const char *accept, const char *body, size_t len);

/* true for a request header the proxy drops (compared case-insensitively):
 * hop-by-hop ones, Content-Length (libcurl sets it), Expect. */
bool actreq_drop_request_header(const char *name);
/* true for a response header the proxy drops: hop-by-hop ones and
 * Content-Length (libmicrohttpd frames the answer itself). */
bool actreq_drop_response_header(const char *name);
