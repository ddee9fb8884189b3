/*
 * Drain-before-terminate. When an InferenceService must shrink from
 * `current` to `desired` replicas, kinfer does not just lower the
 * Deployment's replicas (the ReplicaSet would kill pods mid-request):
 *
 *   1. choose the victims: pods already draining, then not yet warm, then
 *      least loaded (requests in flight, from each pod's own metrics), then
 *      newest;
 *   2. set their kinfer.io/warmed-up to False, reason Draining: they leave
 *      Ready, so the Service (and every load balancer that follows
 *      readiness) stops sending to them; the start is kept in the pod
 *      annotation kinfer.io/draining-since, so a new leader carries on;
 *   3. wait until each has no request in flight and at least the minimum
 *      drain time has passed (endpoint removal takes a moment to reach
 *      every client), or until spec.drain.timeoutSeconds (an Event says so);
 *      a victim that still gets new requests after the minimum is handed
 *      to its shutdown at once (below);
 *   4. give them the lowest controller.kubernetes.io/pod-deletion-cost, so
 *      the ReplicaSet removes exactly those, and only then lower the
 *      Deployment's replicas.
 *
 * pod-deletion-cost only ranks pods inside one ReplicaSet: while a rollout
 * runs (more than one ReplicaSet has pods), the Deployment controller
 * would take a scale-down from the old ReplicaSet whatever kinfer chose.
 * So a scale-down waits until the rollout has finished (deferred; the
 * status says so) and is then drained as above. A drain already under way
 * when the rollout starts is called off: its pods serve again (DrainCancelled,
 * "the scale-down waits for the rollout to finish") rather than stay out
 * of service for the whole rollout, or for ever where it cannot finish;
 * only a pod the Deployment already shrank for (kinfer's
 * pod-deletion-cost on it) is left to go.
 *
 * Leaving the endpoints stops new connections only: kube-proxy sends a
 * connection opened before to the same pod for as long as it lives, so a
 * client that keeps its connections (HTTP keep-alive: the OpenAI SDKs,
 * most HTTP clients and proxies behind a ClusterIP) goes on sending to a
 * draining pod, and its in-flight count never reaches zero. Only the
 * server closes those connections, when it shuts down (SIGTERM, after the
 * template's preStop pause): waiting for the timeout does not move them.
 * So a victim whose own counters show requests arriving between two looks
 * that both came after the minimum drain time is done draining (an Event
 * DrainHandedOver says so): the kubelet stops it with the grace period,
 * in which the server answers what it holds and closes those connections.
 *
 * A scale-up arriving mid-drain puts the pods still needed back in service
 * (warmed-up True again, reason DrainCancelled, the drain annotation and
 * kinfer's pod-deletion-cost removed) without a restart.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "manager.h"

#define DRAIN_MIN_SECONDS 5
#define DRAIN_DELETION_COST "-2147483648"
#define DRAIN_DELETION_COST_VALUE (-2147483648LL)
#define DRAIN_POD_DELETION_COST "controller.kubernetes.io/pod-deletion-cost"
/* Pods of one service drain looks at: the CRD's 1000 replicas, a surge and
 * the pods on their way out, with room to spare. More: no scale-down. */
#define DRAIN_MAX_PODS 4096

struct drain_service {
	const char *ns, *name, *uid;
	json_object *spec; /* the parsed .spec (the reconcile's snapshot) */
	bool rolling;      /* the Deployment is mid-rollout (its status) */
};

enum drain_action {
	DRAIN_NONE,    /* stays as it is */
	DRAIN_UNDRAIN, /* back in service: the scale-down is off or smaller */
	DRAIN_START,   /* a victim that served: take it out of service */
	DRAIN_WAIT,    /* a victim still draining */
	/* A victim draining with no start to count from (its annotation
	 * missing, not a time, or later than this clock: another replica's
	 * clock ahead): the start is written anew, now, and it waits. Counted
	 * from nothing, it would wait for ever and the scale-down never end. */
	DRAIN_RESTAMP,
	DRAIN_TIMED_OUT, /* a victim past the drain timeout: removed anyway */
	DRAIN_HANDOVER,  /* a victim still sent requests on old connections: removed now */
	DRAIN_DONE,      /* a victim drained, or that never served */
};

/* A pod that may be drained, as the victim order sees it. */
struct drain_candidate {
	char name[256], uid[64], ip[64], template_hash[64];
	int64_t created, draining_since;
	bool warm, draining;
	bool our_cost;   /* carries kinfer's lowest pod-deletion-cost */
	double inflight; /* requests in flight; < 0 = not known */
	double answered; /* requests answered so far (its counters); < 0 = not known */
	/* Requests that reached it between its last two looks (answered plus
	 * the change in flight), in the arrived_for_ms from arrived_from_ms
	 * (wall clock); < 0 = not known. */
	double arrived;
	int64_t arrived_from_ms, arrived_for_ms;
	enum drain_action action; /* drain_decide's */
};

/*
 * Sort candidates victims first: already draining, then not warm, then
 * least loaded (unknown load last), then newest, then by name. Pure.
 */
void drain_order(struct drain_candidate *c, size_t n);

/*
 * The live pods of service in ns from the pod cache (under the caller's
 * read lock), in a new array (free it). 0; -E2BIG past DRAIN_MAX_PODS;
 * -ENOMEM.
 */
int drain_candidates(struct cache *pods, const char *ns, const char *service,
		     struct drain_candidate **ret, size_t *ret_n);

struct drain_input {
	int32_t current, desired; /* the Deployment's replicas, the replicas wanted */
	int64_t now;              /* seconds since the epoch */
	int timeout_s;            /* spec.drain.timeoutSeconds */
	bool knows_load;          /* the framework names in-flight metrics */
	bool rolling;             /* a rollout runs (also: candidates of two templates) */
};

struct drain_decision {
	int32_t replicas;    /* what the Deployment should run now */
	uint64_t requeue_ns; /* > 0: look again that soon */
	bool deferred;       /* a scale-down waits for the rollout */
	bool shrink;         /* victims drained: mark them, lower the replicas */
	size_t victims;      /* c[0..victims) after the order, when shrinking */
	int started;         /* victims taken out of service now */
};

/*
 * One step's decisions, pure: orders c (victims first, when shrinking),
 * sets each candidate's action and fills ret.
 */
void drain_decide(struct drain_candidate *c, size_t n, const struct drain_input *in,
		  struct drain_decision *ret);

/*
 * A draining pod's look (now_ms, wall clock; its answered and in-flight
 * requests) against the previous one kept for its uid, which it replaces:
 * *ret_arrived the requests that reached it in between (answered plus the
 * change in flight), *ret_from_ms the previous look's time. -ENOENT on
 * the first look, or when a counter went down (the server restarted) or
 * the clock did not move. Kept in memory for up to DRAIN_LOOKS pods, the
 * oldest replaced first: a new leader needs one more look. Thread-safe.
 */
#define DRAIN_LOOKS 512
int drain_look(const char *uid, int64_t now_ms, double answered, double inflight,
	       double *ret_arrived, int64_t *ret_from_ms);

/* What one step did, for the caller's Deployment and status. */
struct drain_result {
	int32_t replicas;    /* what the Deployment should run now */
	uint64_t requeue_ns; /* > 0: look again that soon */
	bool deferred;       /* the scale-down waits for a rollout */
};

/*
 * One step: decide and carry out the writes (pod conditions and
 * annotations). ret is written only on success: on an error (with
 * ctx->error) the caller must not shrink the Deployment.
 */
int drain_step(struct reconcile_ctx *ctx, const struct drain_service *svc, int32_t current,
	       int32_t desired, struct drain_result *ret);
