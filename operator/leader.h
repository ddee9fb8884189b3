/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * semantics: a candidate takes the lease when it is free or its holder has
 * not renewed it for leaseDuration, measured on the local clock from the
 * moment this process last saw the record change (never by comparing our
 * clock with another's renewTime); the leader renews every retry period and
 * gives up when it could not renew for renewDeadline; every write is a
 * compare-and-swap on resourceVersion; a clean shutdown releases the lease
 * (empty holder) so a standby takes over at once.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "kube.h"

struct metrics;
struct leader;

struct leader_options {
	const char *namespace;
	const char *name;
	const char *identity;         /* NULL = hostname_random */
	uint64_t lease_ns;            /* 0 = 15 s */
	uint64_t renew_deadline_ns;   /* 0 = 10 s */
	uint64_t retry_ns;            /* 0 = 2 s */
	void (*on_started)(void *ud); /* on the election thread */
	void (*on_stopped)(void *ud); /* leadership lost (not on release) */
	void *ud;
	struct metrics *metrics;
};

int leader_new(struct kube_client *c, const struct leader_options *o, struct leader **ret);
int leader_start(struct leader *l);
bool leader_is_leader(struct leader *l);
const char *leader_identity(const struct leader *l);
/* Stop the election thread; release the lease when we hold it. */
void leader_stop(struct leader *l);
void leader_free(struct leader *l);

/* ---- the state logic, pure, for tests ---------------------------------- */

/* A Lease's spec. */
struct leader_record {
	char holder[256];
	long duration_s;
	int64_t renew_us; /* renewTime, microseconds since the epoch */
	int64_t acquire_us;
	long transitions;
};

/* The Lease's spec (missing fields are zero). */
void leader_record_read(json_object *lease, struct leader_record *r);

enum leader_step {
	LEADER_WAIT,    /* another holder's lease is still valid */
	LEADER_ACQUIRE, /* free or expired: take it (one more transition) */
	LEADER_RENEW,   /* ours: renew it */
};

/*
 * What identity does with the record cur, which this process first saw at
 * observed_at (monotonic ns; client-go's observedTime: another holder's
 * lease is judged by our clock, never by its renewTime). now_ns is the
 * monotonic now, now_us the wall clock written as renewTime. On WAIT,
 * *ret_expires_in is how long the lease stays valid; else *ret_want is the
 * record to write.
 */
enum leader_step leader_decide(const struct leader_record *cur, const char *identity,
			       long duration_s, uint64_t observed_at, uint64_t now_ns, int64_t now_us,
			       struct leader_record *ret_want, uint64_t *ret_expires_in);
