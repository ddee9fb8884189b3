/*
 * The operator's plain HTTP endpoints, served by every replica:
 *
 *   /healthz   200 while the process's loops are alive
 *   /readyz    200 once every cache has synced (leader or standby), else
 *              503 with the reason
 *   /metrics   the Prometheus text format
 *
 * Routes are rows of a const table; connections and request time are
 * bounded. Listens on a host:port (port 0 = any free one; httpserver_port
 * tells which).
 */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct metrics;
struct httpserver;

struct httpserver_hooks {
	/* Fill msg (for people) and return true when healthy / ready. */
	bool (*healthy)(void *ud, char *msg, size_t len);
	bool (*ready)(void *ud, char *msg, size_t len);
	/* Called before /metrics renders (update gauges). */
	void (*before_metrics)(void *ud);
	void *ud;
};

int httpserver_start(const char *addr, struct metrics *metrics,
		     const struct httpserver_hooks *hooks, struct httpserver **ret);
unsigned httpserver_port(const struct httpserver *s);
void httpserver_stop(struct httpserver *s);

/*
 * Queue a response of len bytes of body with Content-Type type. owned: the
 * body was malloc'ed and is handed over (freed by MHD), else it is copied.
 * Shared with the webhook server.
 */
enum MHD_Result httpserver_reply(struct MHD_Connection *c, unsigned code, const char *type,
				 const char *body, size_t len, bool owned);

/* Which route answers method and url: 200 (and the route's path), 405 (a
 * method other than GET or HEAD) or 404. For tests. */
unsigned httpserver_route(const char *method, const char *url, const char **ret_path);

/* The peer of a connection went away (its side of the socket closed or
 * shut down; also what MHD_stop_daemon does to every connection): for a
 * handler or content reader that waits on something else meanwhile. */
bool httpserver_peer_gone(struct MHD_Connection *c);

/* "host:port" or ":port" -> an IPv4/IPv6 socket address. */
int httpserver_parse_addr(const char *addr, void *ret_sockaddr_storage, unsigned *ret_len);
