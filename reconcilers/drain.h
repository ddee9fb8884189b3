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
 *   4. give them the lowest controller.kubernetes.io/pod-deletion-cost, so
 *      the ReplicaSet removes exactly those pods, and only then lower the
 *      Deployment's replicas.
 *
 * A scale-up arriving mid-drain puts the pods still needed back in service
 * (warmed-up True again, reason DrainCancelled) without a restart.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager.h"

#define DRAIN_MIN_SECONDS 5
#define DRAIN_DELETION_COST "-2147483648"

struct drain_service {
	const char *ns, *name, *uid;
	json_object *spec;          /* the parsed .spec (the reconcile's snapshot) */
};

/* A pod that may be drained, as the victim order sees it. */
struct drain_candidate {
	char name[256], uid[64], ip[64];
	int64_t created, draining_since;
	bool warm, draining;
	double inflight;            /* requests in flight; < 0 = not known */
};

/*
 * Sort candidates victims first: already draining, then not warm, then
 * least loaded (unknown load last), then newest, then by name. Pure.
 */
void drain_order(struct drain_candidate *c, size_t n);

/*
 * One step. *ret_replicas is what the Deployment should run now (current
 * while draining, desired once drained); *ret_requeue_ns > 0 asks to look
 * again that soon. 0 or a negative errno (with ctx->error).
 */
int drain_step(struct reconcile_ctx *ctx, const struct drain_service *svc, int32_t current,
	       int32_t desired, int32_t *ret_replicas, uint64_t *ret_requeue_ns);

/* Requests in flight on a pod, from its metrics endpoint; -errno when the
 * endpoint cannot be read. */
int drain_inflight(const char *ip, int32_t port, const char *path,
		   const char *const *metrics, double *ret);
