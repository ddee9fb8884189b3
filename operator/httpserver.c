/*
 * Health and metrics over libmicrohttpd with its internal polling thread.
 * Every answer is built whole and handed over in one response.
 */
#include "httpserver.h"

#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HTTP_MAX_CONNECTIONS 64
#define HTTP_TIMEOUT_S 10

struct httpserver {
	struct MHD_Daemon *d;
	struct metrics *metrics;
	struct httpserver_hooks hooks;
	unsigned port;
};

struct route {
	const char *path;
	enum MHD_Result (*serve)(struct httpserver *s, struct MHD_Connection *c);
};

enum MHD_Result httpserver_reply(struct MHD_Connection *c, unsigned code, const char *type,
				 const char *body, size_t len, bool owned)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 owned ? MHD_RESPMEM_MUST_FREE :
									 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result check(struct MHD_Connection *c, bool (*fn)(void *, char *, size_t), void *ud)
{
	char msg[512] = "ok", body[600];
	bool ok = fn ? fn(ud, msg, sizeof(msg)) : true;
	int n = snprintf(body, sizeof(body), "%s\n", msg);
	return httpserver_reply(c, ok ? 200 : 503, "text/plain; charset=utf-8", body,
				(size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1, false);
}

static enum MHD_Result serve_healthz(struct httpserver *s, struct MHD_Connection *c)
{
	return check(c, s->hooks.healthy, s->hooks.ud);
}

static enum MHD_Result serve_readyz(struct httpserver *s, struct MHD_Connection *c)
{
	return check(c, s->hooks.ready, s->hooks.ud);
}

static enum MHD_Result serve_metrics(struct httpserver *s, struct MHD_Connection *c)
{
	char *text;
	size_t len;
	if (s->hooks.before_metrics)
		s->hooks.before_metrics(s->hooks.ud);
	if (metrics_render(s->metrics, &text, &len) < 0)
		return httpserver_reply(c, 500, "text/plain", "out of memory\n", 14, false);
	return httpserver_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, true);
}

static const struct route routes[] = {
	{ "/healthz", serve_healthz },
	{ "/readyz", serve_readyz },
	{ "/metrics", serve_metrics },
};

/* 200 and the route, 405 for a method other than GET and HEAD, else 404. */
static unsigned route(const char *method, const char *url, const struct route **ret)
{
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return 405;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0) {
			*ret = &routes[i];
			return 200;
		}
	return 404;
}

unsigned httpserver_route(const char *method, const char *url, const char **ret_path)
{
	const struct route *rt = NULL;
	unsigned code = route(method, url, &rt);
	if (code == 200 && ret_path)
		*ret_path = rt->path;
	return code;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct httpserver *s = cls;
	(void)version;
	(void)data;
	(void)con_cls;

	if (*data_size) { /* no route takes a body */
		*data_size = 0;
		return MHD_YES;
	}
	const struct route *rt = NULL;
	switch (route(method, url, &rt)) {
	case 200:
		return rt->serve(s, c);
	case 405:
		return httpserver_reply(c, 405, "text/plain", "method not allowed\n", 19, false);
	default:
		return httpserver_reply(c, 404, "text/plain", "not found\n", 10, false);
	}
}

int httpserver_parse_addr(const char *addr, void *ret_ss, unsigned *ret_len)
{
	struct sockaddr_storage *ss = ret_ss;
	char host[256];
	const char *colon = strrchr(addr, ':');
	char *end;
	long port;

	if (!colon)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		host[hl - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*s6);
		return 0;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	if (hl == 0)
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return -EINVAL;
	*ret_len = sizeof(*s4);
	return 0;
}

int httpserver_start(const char *addr, struct metrics *metrics,
		     const struct httpserver_hooks *hooks, struct httpserver **ret)
{
	struct sockaddr_storage ss;
	unsigned sl;
	struct httpserver *s;
	int r = httpserver_parse_addr(addr, &ss, &sl);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->metrics = metrics;
	if (hooks)
		s->hooks = *hooks;
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				(size_t)65536, MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	*ret = s;
	return 0;
}

unsigned httpserver_port(const struct httpserver *s)
{
	return s->port;
}

void httpserver_stop(struct httpserver *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}

bool httpserver_peer_gone(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return false;
	struct pollfd p = { .fd = ci->connect_fd, .events = POLLRDHUP };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}
