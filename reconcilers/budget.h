/*
 * The PodDisruptionBudget of an InferenceService: NAME, maxUnavailable 1
 * over its pods (workload.c builds the body), so that a node drain or the
 * cluster autoscaler evicts one replica at a time instead of every replica
 * of a model at once (an outage, then a cold start of minutes).
 *
 * Kubernetes refuses (500) to evict a pod that two budgets select, which
 * would block every drain of its node: so kinfer keeps no budget of its
 * own while another one in the namespace (the user's) selects the pods;
 * it removes its own when such a budget appears and makes it again when
 * that one goes. Every budget of the cluster is cached (few and small:
 * kind_pdbs in operator/kinds.h): its selector, and for kinfer's own the
 * applied-hash and who edited it.
 */
#pragma once

#include "kinds.h"
#include "snapshot.h"
#include "workload.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct reconcile_ctx;

/*
 * Make, keep or remove s's budget: applied when w has one and no other
 * budget in the namespace selects the pods, when it is missing, differs
 * from w's or was edited by someone else; deleted when w has none (or
 * another one selects the pods) and the cached one is ours. A budget of
 * that name that is not this InferenceService's is never touched.
 * *ret_wait: as the Deployment's in_flight (a write not yet seen). 0, or
 * -errno with ctx->error set.
 */
int budget_sync(struct reconcile_ctx *ctx, const struct snapshot *s, const struct workload *w,
		uint64_t *ret_wait);
