/*
 * The activator's table of services: per InferenceService, the requests
 * it holds (bounded by maxPendingRequests), the ready endpoints of its
 * private Service as last seen, and the spec values it read (cached a
 * short while). Request threads hold and wait; one poller thread lists
 * the endpoints of every service that holds requests and publishes them.
 *
 * The table itself is bounded (ACTSVC_MAX_SERVICES): an entry no request
 * uses is reused for another service when the table is full.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actreq.h"

#define ACTSVC_MAX_SERVICES 4096
#define ACTSVC_MAX_ENDPOINTS 32
#define ACTSVC_IP_MAX 48

struct actsvc_endpoint {
	char ip[ACTSVC_IP_MAX];
	int port;
};

/* One service. Fields under lock unless said otherwise. */
struct actsvc {
	struct actreq_target id; /* constant once in use */
	pthread_mutex_t lock;
	pthread_cond_t changed; /* endpoints published */
	int refs;               /* request threads using the entry */
	int held;               /* requests waiting for an endpoint */
	struct actsvc_endpoint ep[ACTSVC_MAX_ENDPOINTS];
	size_t n_ep;
	uint64_t ep_seen_ns;    /* when the poller last listed them (0: never) */
	unsigned rr;            /* round robin over ep */
	uint64_t activation_ns; /* last activation write asked for (0: none) */

	/* The spec, read by whoever holds fetch_lock (one API read at a
	 * time per service; the others wait for its result). */
	pthread_mutex_t fetch_lock;
	uint64_t fetched_ns; /* 0: never */
	int exists;          /* 1, 0 (NotFound), -1 (read failed) */
	int max_pending;
	int timeout_s;
	bool scale_to_zero; /* spec.scaling.scaleToZero present */
};

struct actsvc_table;

int actsvc_table_new(struct actsvc_table **ret);
void actsvc_table_free(struct actsvc_table *t);

/* The entry of ns/name, created on first use, with a reference the caller
 * gives back with actsvc_put. NULL when the table is full of entries in
 * use (or out of memory). */
struct actsvc *actsvc_get(struct actsvc_table *t, const struct actreq_target *id);
void actsvc_put(struct actsvc_table *t, struct actsvc *s);

/* Count one more held request: 0, or -EBUSY when max_pending are held. */
int actsvc_hold(struct actsvc *s, int max_pending);
void actsvc_unhold(struct actsvc *s);
int actsvc_held(struct actsvc *s);

/*
 * Wait until s has a ready endpoint in a list published at or after
 * since_ns (monotonic; older lists may name pods gone since), or deadline_ns
 * passes: 0 with the next endpoint (round robin) in *ret, or -ETIMEDOUT.
 */
int actsvc_wait(struct actsvc *s, uint64_t since_ns, uint64_t deadline_ns,
		struct actsvc_endpoint *ret);
/*
 * Wait for the first list published at or after since_ns, whatever it
 * holds, until deadline_ns: 0 with its next endpoint in *ret, -ENOENT when
 * it named none (the service is really at zero), -ETIMEDOUT when no list
 * came.
 */
int actsvc_listed(struct actsvc *s, uint64_t since_ns, uint64_t deadline_ns,
		  struct actsvc_endpoint *ret);
/* The next endpoint without waiting, if they were seen within max_age_ns:
 * 0, or -ENOENT. */
int actsvc_pick(struct actsvc *s, uint64_t max_age_ns, struct actsvc_endpoint *ret);
/* Publish what the poller listed (n may be 0) and wake the waiters. */
void actsvc_publish(struct actsvc *s, const struct actsvc_endpoint *ep, size_t n);

/* Is an activation write due (none within min_gap_ns)? If so, note now. */
bool actsvc_activation_due(struct actsvc *s, uint64_t min_gap_ns);
/* Was an activation written since the last call (the cold start the held
 * requests waited for is over)? Forgets it: the next wait writes at once. */
bool actsvc_release_due(struct actsvc *s);

/*
 * The services that hold requests, for the poller: up to max of them,
 * each with a reference (actsvc_put each). Returns how many.
 */
size_t actsvc_busy(struct actsvc_table *t, struct actsvc **out, size_t max);
/* Wake the poller (a new service holds requests) / wait for that or
 * timeout_ns. */
void actsvc_kick(struct actsvc_table *t);
void actsvc_wait_kick(struct actsvc_table *t, uint64_t timeout_ns);
/* Total held requests and services in use (metrics, /readyz). */
void actsvc_totals(struct actsvc_table *t, int *ret_held, size_t *ret_services);
