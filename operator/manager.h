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
 * with how a change maps to keys, its reconcile function and worker count,
 * and optionally a constructor and destructor of its own data (made with
 * the manager, freed with it, handed to reconcile and to the map
 * functions). The manager knows nothing else about it. Rows reach each
 * other through handles (manager_controller), never by name.
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
struct controller; /* a row of a running manager: a handle */

struct reconcile_ctx {
	struct manager *manager;
	struct kube_client *client;
	const struct controller_def *controller;
	void *data;                /* this row's own data (controller_def.data_new) */
	void *shared;              /* manager_options.controller_data */
	uint64_t requeue_after_ns; /* with RECONCILE_REQUEUE_AFTER */
	char error[1024];          /* with ERROR/TERMINAL: for the log */
	/* With ERROR: a write was refused because the namespace is being
	 * deleted (kube_status.ns_terminating). Retrying cannot help and the
	 * namespace's deletion takes the object too, so the key is dropped
	 * (logged at info), as Kubernetes' own controllers do. */
	bool ns_terminating;
};

typedef void (*controller_emit_fn)(void *emit_ud, const char *key);

struct controller_watch {
	const struct cache_kind *kind;
	/* Keys to reconcile when obj changes; NULL = obj's own key. data is
	 * the row's own data. */
	void (*map)(void *data, const struct cache_obj *obj, controller_emit_fn emit, void *emit_ud);
	/* On an update, map the old object too: its keys may not be the new
	 * one's (an autoscaler pointed from one Deployment to another). */
	bool map_old;
};

/* What a row's constructor gets. */
struct controller_env {
	struct manager *manager;
	struct controller *self; /* this row's handle */
	void *shared;            /* manager_options.controller_data */
	struct metrics *metrics;
};

#define CONTROLLER_MAX_WATCHES 8 /* watches of one row */

struct controller_def {
	const char *name;
	const struct controller_watch *watches;
	size_t n_watches; /* at most CONTROLLER_MAX_WATCHES */
	enum reconcile_result (*reconcile)(struct reconcile_ctx *ctx, const char *key);
	int workers;
	/*
	 * Optional. data_new makes the row's data after every row has its
	 * handle and before any event is handled; data_link runs after every
	 * row's data_new (to join rows through their handles); data_free runs
	 * after the workers stopped and accepts a half-built object. 0 or a
	 * negative errno (manager_new fails with it).
	 */
	int (*data_new)(const struct controller_env *env, void **ret_data);
	int (*data_link)(void *data, const struct controller_env *env);
	void (*data_free)(void *data);
};

struct manager_options {
	struct kube_client *client;
	struct kube_client *lease_client; /* short timeouts; NULL = client */
	struct metrics *metrics;
	const struct controller_def *const *controllers;
	size_t n_controllers;
	void *controller_data;       /* handed to every reconcile */
	struct events *events;       /* Warning Events on unreadable objects; may be NULL */
	const char *http_addr;       /* NULL = no HTTP server */
	const char *watch_namespace; /* NULL = all namespaces */
	uint64_t resync_ns;
	uint64_t shutdown_timeout_ns; /* 0 = 30 s */
	bool leader_elect;
	const char *lease_namespace;
	const char *lease_name;
	const char *identity; /* NULL = hostname_random */
	uint64_t lease_ns, renew_deadline_ns, retry_ns;
};

int manager_new(const struct manager_options *o, struct manager **ret);
int manager_start(struct manager *m);
/* Block until SIGTERM or SIGINT (blocked in all threads by the caller) or
 * lost leadership; stop everything; return the exit code. *signal_ns (if
 * not NULL): when the signal came (ktime_mono_ns). */
int manager_run_until_signal(struct manager *m, uint64_t *signal_ns);
/* Stop everything (what run_until_signal does after the signal). */
void manager_stop(struct manager *m);
void manager_free(struct manager *m);

struct cache *manager_cache(struct manager *m, const struct cache_kind *kind);
unsigned manager_http_port(const struct manager *m);
bool manager_is_leader(struct manager *m);
/* The handle of a row of this manager's table; NULL when def is not one. */
struct controller *manager_controller(struct manager *m, const struct controller_def *def);
/* A row's own data (what its data_new made); NULL without one. */
void *controller_data(const struct controller *c);
/* Ask a row to reconcile key; 0, -ESHUTDOWN or -ENOMEM. */
int controller_enqueue(struct controller *c, const char *key);
