/*
 * The manager: starts what a set of controllers needs and stops it in
 * order.
 *
 *   start: HTTP (health, metrics) -> informers, one per watched kind ->
 *          caches synced -> leader election -> (leader) reconcile workers
 *   stop (SIGTERM/SIGINT): queues refuse new work, in-flight reconciles
 *          finish (bounded by shutdown_timeout), the lease is released,
 *          informers and HTTP stop; exit 0. Lost leadership: exit 1, so the
 *          pod restarts as a standby.
 *
 * A controller is a row of a const table: its name, the kinds it watches
 * with how a change maps to keys, its reconcile function and worker count.
 * The manager knows nothing else about it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "kube.h"

struct events;
struct metrics;
struct manager;

enum reconcile_result {
	RECONCILE_OK,            /* done: forget the key's failures */
	RECONCILE_ERROR,         /* transient: requeue with backoff */
	RECONCILE_TERMINAL,      /* will not succeed by retrying: log, forget */
	RECONCILE_REQUEUE_AFTER, /* done for now: look again after ctx->requeue_after_ns */
};

struct controller_def;

struct reconcile_ctx {
	struct manager *manager;
	struct kube_client *client;
	const struct controller_def *controller;
	void *data;                  /* manager_options.controller_data */
	uint64_t requeue_after_ns;   /* with RECONCILE_REQUEUE_AFTER */
	char error[1024];            /* with ERROR/TERMINAL: for the log */
};

typedef void (*controller_emit_fn)(void *emit_ud, const char *key);

struct controller_watch {
	const struct cache_kind *kind;
	/* Keys to reconcile when obj changes; NULL = obj's own key. */
	void (*map)(const struct cache_obj *obj, controller_emit_fn emit, void *emit_ud);
};

struct controller_def {
	const char *name;
	const struct controller_watch *watches;
	size_t n_watches;
	enum reconcile_result (*reconcile)(struct reconcile_ctx *ctx, const char *key);
	int workers;
};

struct manager_options {
	struct kube_client *client;
	struct kube_client *lease_client;   /* short timeouts; NULL = client */
	struct metrics *metrics;
	const struct controller_def *const *controllers;
	size_t n_controllers;
	void *controller_data;              /* handed to every reconcile */
	struct events *events;              /* Warning Events on unreadable objects; may be NULL */
	const char *http_addr;              /* NULL = no HTTP server */
	const char *watch_namespace;        /* NULL = all namespaces */
	uint64_t resync_ns;
	uint64_t shutdown_timeout_ns;       /* 0 = 30 s */
	bool leader_elect;
	const char *lease_namespace;
	const char *lease_name;
	const char *identity;               /* NULL = hostname_random */
	uint64_t lease_ns, renew_deadline_ns, retry_ns;
};

int manager_new(const struct manager_options *o, struct manager **ret);
int manager_start(struct manager *m);
/* Block until SIGTERM or SIGINT (blocked in all threads by the caller) or
 * lost leadership; stop everything; return the exit code. */
int manager_run_until_signal(struct manager *m);
/* Stop everything (what run_until_signal does after the signal). */
void manager_stop(struct manager *m);
void manager_free(struct manager *m);

struct cache *manager_cache(struct manager *m, const struct cache_kind *kind);
unsigned manager_http_port(const struct manager *m);
bool manager_is_leader(struct manager *m);
/* Enqueue a key for a controller (by name); 0 or -ENOENT. */
int manager_enqueue(struct manager *m, const char *controller, const char *key);
