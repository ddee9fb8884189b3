/*
 * Request parsing for the activator: the Host header, the stream wish and
 * the headers a proxy drops. Pure functions over bounded input; no
 * allocation.
 */
#include "actreq.h"

#include "jsonscan.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* One DNS label of at most 63 bytes, [a-z0-9-], not starting or ending
 * with '-'. Service names must also start with a letter (RFC 1035). */
static bool dns_label(const char *s, size_t n, bool letter_first)
{
	if (n == 0 || n >= ACTREQ_NAME_MAX)
		return false;
	if (s[0] == '-' || s[n - 1] == '-')
		return false;
	if (letter_first && !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* Strip ":port" (1-65535) from h[0..*n); -EINVAL for a bad one. */
static int strip_port(const char *h, size_t *n)
{
	const char *colon = memchr(h, ':', *n);
	if (!colon)
		return 0;
	size_t pl = *n - (size_t)(colon - h) - 1;
	if (pl == 0 || pl > 5)
		return -EINVAL;
	long port = 0;
	for (size_t i = 0; i < pl; i++) {
		if (!isdigit((unsigned char)colon[1 + i]))
			return -EINVAL;
		port = port * 10 + (colon[1 + i] - '0');
	}
	if (port < 1 || port > 65535)
		return -EINVAL;
	*n = (size_t)(colon - h);
	return 0;
}

static bool all_digits_and_dots(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && s[i] != '.')
			return false;
	return true;
}

int actreq_parse_host(const char *host, struct actreq_target *ret, char *err, size_t errlen)
{
	char h[256];
	size_t n, start[4], len[4], labels = 0, i;

	if (!host || !*host) {
		snprintf(err, errlen,
			 "no Host header: the activator finds the InferenceService "
			 "from Host NAME.NAMESPACE[.svc[.cluster.local]][:port]");
		return -EINVAL;
	}
	n = strlen(host);
	if (n >= sizeof(h)) {
		snprintf(err, errlen, "Host header of %zu bytes is too long", n);
		return -EINVAL;
	}
	if (host[0] == '[') {
		snprintf(err, errlen,
			 "Host is an IP address; the activator needs "
			 "NAME.NAMESPACE[.svc[.cluster.local]][:port]");
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		h[i] = (char)tolower((unsigned char)host[i]);
	h[n] = '\0';
	if (strip_port(h, &n) < 0) {
		snprintf(err, errlen, "Host \"%.200s\": bad port (want 1-65535)", host);
		return -EINVAL;
	}
	if (n > 0 && h[n - 1] == '.') /* a fully qualified name's root dot */
		n--;
	if (n == 0 || all_digits_and_dots(h, n)) {
		snprintf(err, errlen,
			 "Host \"%.200s\" is %s; the activator needs "
			 "NAME.NAMESPACE[.svc[.cluster.local]][:port]",
			 host, n == 0 ? "empty" : "an IP address");
		return -EINVAL;
	}
	for (i = 0; i <= n && labels < 4;) {
		const char *dot = memchr(h + i, '.', n - i);
		size_t e = dot ? (size_t)(dot - h) : n;
		start[labels] = i;
		len[labels] = e - i;
		labels++;
		if (!dot)
			break;
		i = e + 1;
	}
	if (labels < 2) {
		snprintf(err, errlen,
			 "Host \"%.200s\" has no namespace; the activator needs "
			 "NAME.NAMESPACE[.svc[.cluster.local]][:port]",
			 host);
		return -EINVAL;
	}
	if (!dns_label(h + start[0], len[0], true)) {
		snprintf(err, errlen,
			 "Host \"%.200s\": \"%.*s\" is not a Service name (a DNS label: "
			 "lower case letters, digits and '-', starting with a letter, at most 63)",
			 host, (int)len[0], h + start[0]);
		return -EINVAL;
	}
	if (!dns_label(h + start[1], len[1], false)) {
		snprintf(err, errlen,
			 "Host \"%.200s\": \"%.*s\" is not a namespace name (a DNS "
			 "label of at most 63 characters)",
			 host, (int)len[1], h + start[1]);
		return -EINVAL;
	}
	/* NAME.NAMESPACE.svc and any cluster domain after it (its labels are
	 * the cluster's to choose; each must still be a DNS label). */
	if (labels >= 3 && (len[2] != 3 || memcmp(h + start[2], "svc", 3) != 0)) {
		snprintf(err, errlen,
			 "Host \"%.200s\": want NAME.NAMESPACE[.svc[.cluster.local]], "
			 "not \"%.*s\" after the namespace",
			 host, (int)len[2], h + start[2]);
		return -EINVAL;
	}
	if (labels == 4) {
		size_t j = start[3];
		while (j < n) {
			const char *dot = memchr(h + j, '.', n - j);
			size_t e = dot ? (size_t)(dot - h) : n;
			if (!dns_label(h + j, e - j, false)) {
				snprintf(err, errlen, "Host \"%.200s\": bad cluster domain", host);
				return -EINVAL;
			}
			j = e + 1;
		}
	}
	memcpy(ret->name, h + start[0], len[0]);
	ret->name[len[0]] = '\0';
	memcpy(ret->ns, h + start[1], len[1]);
	ret->ns[len[1]] = '\0';
	return 0;
}

/* Does the comma-separated media range list name text/event-stream? */
static bool accepts_event_stream(const char *accept)
{
	const char *p = accept;
	static const char want[] = "text/event-stream";

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',' && *e != ';' && *e != ' ' && *e != '\t')
			e++;
		if ((size_t)(e - p) == sizeof(want) - 1 && strncasecmp(p, want, sizeof(want) - 1) == 0)
			return true;
		p = strchr(e, ',');
	}
	return false;
}

bool actreq_wants_stream(const char *accept, const char *body, size_t len)
{
	size_t i = 0, s, e;

	if (accept && accepts_event_stream(accept))
		return true;
	if (!body)
		return false;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i >= len || body[i] != '{')
		return false;
	if (jsonscan_path(body, len, i, "stream", &s, &e) < 0)
		return false;
	return e - s == 4 && memcmp(body + s, "true", 4) == 0;
}

static bool in_list(const char *name, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcasecmp(name, list[i]) == 0)
			return true;
	return false;
}

static const char *const hop_by_hop[] = {
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"TE",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
	"Content-Length",
	NULL,
};

bool actreq_drop_request_header(const char *name)
{
	return in_list(name, hop_by_hop) || strcasecmp(name, "Expect") == 0;
}

bool actreq_drop_response_header(const char *name)
{
	return in_list(name, hop_by_hop);
}
